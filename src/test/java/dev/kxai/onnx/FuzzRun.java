package dev.kxai.onnx;

import dev.kxai.Inputs;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.backend.Backends;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;

/** Shared by the ONNX fuzz targets: parse, and where a graph loads and is small, one forward pass. */
final class FuzzRun {
    private FuzzRun() {
    }

    /** Elements of all inputs at batch 1 above which the forward pass is skipped (time per input). */
    static final long MAX_FORWARD_ELEMENTS = 1 << 14;

    /** Attribute values above which the forward pass is skipped (time per input, not validity). */
    static final long MAX_FORWARD_ATTRIBUTE = 64;

    private static boolean hugeAttribute(byte[] bytes) {
        try {
            for (ai.onnx.proto.OnnxMl.NodeProto n : ai.onnx.proto.OnnxMl.ModelProto.parseFrom(bytes).getGraph().getNodeList()) {
                for (ai.onnx.proto.OnnxMl.AttributeProto a : n.getAttributeList()) {
                    if (Math.abs(a.getI()) > MAX_FORWARD_ATTRIBUTE
                            || a.getIntsList().stream().anyMatch(v -> Math.abs(v) > MAX_FORWARD_ATTRIBUTE)) {
                        return true;
                    }
                }
            }
            return false;
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            return true; // parse accepted it, so unreachable
        }
    }

    static void parseAndRun(byte[] bytes) {
        parseAndRun(bytes, true);
    }

    /** {@code forward}: also one forward pass of a graph that loads (skipped where it would be costly). */
    static void parseAndRun(byte[] bytes, boolean forward) {
        Graph g;
        try {
            g = OnnxImporter.parse(bytes, "fuzz.onnx");
        } catch (KxaiException expected) {
            dev.kxai.io.FuzzChecks.named(expected);
            return;
        }
        if (!forward || hugeAttribute(bytes)) {
            return; // legal but costly: a pad or a kernel of 65536 asks for a forward pass of seconds
        }
        Inputs in = Inputs.empty();
        long total = 0;
        for (Graph.Input i : g.inputs()) {
            int[] s = i.shape();
            long n = 1;
            for (int k = 0; k < s.length; k++) {
                if (k == 0 || s[k] < 0) {
                    s[k] = 1; // batch 1, dynamic dims 1
                }
                n *= Math.max(s[k], 0);
                if (n > MAX_FORWARD_ELEMENTS) {
                    return;
                }
            }
            total += n;
            if (total > MAX_FORWARD_ELEMENTS) {
                return;
            }
            in = in.and(i.name(), new Tensor(s, new float[(int) n])); // zeros: valid ids for integer inputs too
        }
        try (Model m = Model.of(g, Backends.cpu())) {
            Tensor out = m.forward(in);
            if (out == null) {
                throw new AssertionError("forward returned null");
            }
        } catch (KxaiException expected) {
            dev.kxai.io.FuzzChecks.named(expected);
        }
    }
}
