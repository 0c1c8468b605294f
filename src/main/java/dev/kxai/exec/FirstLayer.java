package dev.kxai.exec;

import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;

/**
 * Where the first-layer saving (ARCHITECTURE.md) applies: the one node of a graph that is affine in α along an
 * Integrated Gradients path, so that its outputs at x and at the baseline determine it at every
 * step. One rule for every backend.
 */
public final class FirstLayer {
    private FirstLayer() {
    }

    /**
     * The index of the node that alone reads the model input (as its first operand), if it is a
     * Conv, or a Gemm without transA whose C is absent, ignored (beta 0) or a row bias ([N] or
     * [1, N]: the same for every row, whatever the path's row count), with constant parameters,
     * and is not the graph's output; else -1.
     */
    public static int affineNode(Graph graph) {
        String input = graph.inputName();
        List<Node> nodes = graph.nodes();
        int found = -1;
        for (int i = 0; i < nodes.size(); i++) {
            Node n = nodes.get(i);
            if (n.inputs().contains(input)) {
                if (found >= 0 || !n.inputs().get(0).equals(input)) {
                    return -1;
                }
                found = i;
            }
        }
        if (found < 0) {
            return -1;
        }
        Node n = nodes.get(found);
        if (n.output().equals(graph.outputName())
                || !n.inputs().stream().skip(1).allMatch(graph.constants()::containsKey)) {
            return -1;
        }
        if (n.op() instanceof Op.Conv) {
            return found;
        }
        if (n.op() instanceof Op.Gemm g && !g.transA() && n.inputs().size() >= 2) {
            Tensor b = graph.constants().get(n.inputs().get(1));
            if (b.shape().length != 2) {
                return -1;
            }
            if (n.inputs().size() < 3 || g.beta() == 0f) {
                return found;
            }
            int[] c = graph.constants().get(n.inputs().get(2)).shape();
            int cols = g.transB() ? b.dim(0) : b.dim(1);
            boolean rowBias = (c.length == 1 && c[0] == cols) || (c.length == 2 && c[0] == 1 && c[1] == cols);
            return rowBias ? found : -1;
        }
        return -1;
    }
}
