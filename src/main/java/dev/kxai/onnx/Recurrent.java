package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * ONNX LSTM and GRU unrolled over their (fixed) sequence length into kxai's own operators: the
 * input projection for all steps as one MatMul, then per step MatMul, Add, Sigmoid, Tanh, Mul and
 * Select for the gates, and Unsqueeze/Concat for the outputs. Backward through time is then the
 * composition's gradient, on every backend, with no recurrent kernel of its own. Supported: the
 * default activations, forward/reverse/bidirectional, initial states (given or zero), layout 0
 * and 1, Y, Y_h and Y_c; refused with the node named: peepholes, clip, input_forget, other
 * activations, per-row sequence lengths.
 */
final class Recurrent {
    private final OnnxMl.NodeProto n;
    private final String name;
    private final String source;
    private final LoadTime lt;
    private final Decompositions.Sink out;
    private final boolean lstm;
    private int counter;

    private Recurrent(OnnxMl.NodeProto n, String name, String source, LoadTime lt, Decompositions.Sink out) {
        this.n = n;
        this.name = name;
        this.source = source;
        this.lt = lt;
        this.out = out;
        this.lstm = n.getOpType().equals("LSTM");
    }

    /**
     * Sequence steps an LSTM/GRU may unroll to (about 20 graph nodes each per direction): a model
     * declaring a sequence of 65536 used to build 3.5 million nodes in 20 s and gigabytes (found by
     * fuzzing). {@code -Dkxai.max.recurrent.steps} raises it.
     */
    static final int MAX_STEPS = Integer.getInteger("kxai.max.recurrent.steps", 4096);

    static void unroll(OnnxMl.NodeProto n, String name, String source, LoadTime lt, Decompositions.Sink out) {
        new Recurrent(n, name, source, lt, out).unroll();
    }

    private ModelException bad(String why) {
        return new ModelException(source + ": node '" + name + "' (" + n.getOpType() + "): " + why);
    }

    private String input(int j) {
        return n.getInputCount() > j ? n.getInput(j) : "";
    }

    private Tensor constant(int j, String what) {
        String v = input(j);
        if (v.isEmpty()) {
            return null;
        }
        if (!lt.isConstant(v)) {
            throw bad(what + " '" + v + "' is computed per request; kxai needs the weights constant");
        }
        return lt.valueAt(v, 0);
    }

    /** A fresh value name for an intermediate of this node. */
    private String value(String what) {
        String first = n.getOutputList().stream().filter(o -> !o.isEmpty()).findFirst().orElse(name);
        return first + "/" + what + "_" + counter++;
    }

    private String node(Op op, String opType, String what, String... inputs) {
        String v = value(what);
        out.node(new Node(name + "/" + what + "_" + (counter - 1), opType, op, List.of(inputs), v));
        return v;
    }

    private String constantValue(String what, Tensor t) {
        String v = value(what);
        out.constant(v, t);
        return v;
    }

    private String select(String x, int axis, int from, int count, boolean dropAxis) {
        int[] idx = new int[count];
        for (int i = 0; i < count; i++) {
            idx[i] = from + i;
        }
        return node(new Op.Select(axis, idx, dropAxis ? new int[0] : new int[] {count}), "Slice", "slice", x);
    }

    /** Rows [from, from + rows) of a 2-D slice [d] of a [D, rows·k, cols] weight, transposed to [cols, rows]. */
    private static Tensor transposedBlock(Tensor w, int d, int from, int rows) {
        int r = w.dim(1);
        int c = w.dim(2);
        float[] t = new float[rows * c];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < c; j++) {
                t[j * rows + i] = w.data()[(d * r + from + i) * c + j];
            }
        }
        return new Tensor(new int[] {c, rows}, t);
    }

    private static Tensor vector(Tensor b, int d, int from, int len) {
        float[] v = new float[len];
        if (b != null) {
            System.arraycopy(b.data(), d * b.dim(1) + from, v, 0, len);
        }
        return new Tensor(new int[] {len}, v);
    }

    private static Tensor sum(Tensor a, Tensor b) {
        float[] v = a.data().clone();
        for (int i = 0; i < v.length; i++) {
            v[i] += b.data()[i];
        }
        return new Tensor(a.shape(), v);
    }

    private void unroll() {
        Attrs a = new Attrs(n, name, source);
        int gates = lstm ? 4 : 3;
        long hiddenSize = a.i("hidden_size", -1);
        String direction = a.s("direction", "forward");
        long layoutAttr = a.i("layout", 0);
        if (hiddenSize == -1) {
            throw bad("hidden_size is missing");
        }
        if (hiddenSize < 1 || hiddenSize > (1 << 24)) {
            throw bad("hidden_size " + hiddenSize + " is out of range [1, 2^24]");
        }
        if (layoutAttr != 0 && layoutAttr != 1) {
            throw bad("layout " + layoutAttr + " is neither 0 nor 1");
        }
        int hidden = (int) hiddenSize;
        int layout = (int) layoutAttr;
        if (!List.of("forward", "reverse", "bidirectional").contains(direction)) {
            throw bad("unknown direction '" + direction + "'");
        }
        for (String at : List.of("clip", "activations", "activation_alpha", "activation_beta")) {
            if (n.getAttributeList().stream().anyMatch(x -> x.getName().equals(at))) {
                throw bad("attribute " + at + " is not supported (kxai runs the default activations, unclipped)");
            }
        }
        if (a.i("input_forget", 0) != 0) {
            throw bad("input_forget is not supported");
        }
        if (!input(4).isEmpty()) {
            throw bad("per-row sequence lengths (input sequence_lens) are not supported; pad and mask instead");
        }
        if (lstm && !input(7).isEmpty()) {
            throw bad("peephole weights (input P) are not supported");
        }
        int dirs = direction.equals("bidirectional") ? 2 : 1;
        Tensor w = constant(1, "W");
        Tensor r = constant(2, "R");
        Tensor b = constant(3, "B");
        if (w == null || r == null || w.rank() != 3 || r.rank() != 3 || w.dim(0) != dirs || w.dim(1) != gates * hidden
                || r.dim(0) != dirs || r.dim(1) != gates * hidden || r.dim(2) != hidden) {
            throw bad("weights of shapes W " + (w == null ? "-" : dev.kxai.tensor.Shapes.str(w.shape())) + ", R "
                    + (r == null ? "-" : dev.kxai.tensor.Shapes.str(r.shape())) + " do not fit " + dirs + " direction(s) × "
                    + gates + " gates × hidden_size " + hidden);
        }
        if (b != null && (b.rank() != 2 || b.dim(0) != dirs || b.dim(1) != 2 * gates * hidden)) {
            throw bad("bias B of shape " + dev.kxai.tensor.Shapes.str(b.shape()) + " is not [" + dirs + ", "
                    + 2 * gates * hidden + "] (directions, 2 × gates × hidden_size)");
        }
        String x = n.getInput(0);
        int[] xs = out.shape(x, name);
        if (xs.length != 3 || xs[2] != w.dim(2)) {
            throw bad("input of shape " + dev.kxai.tensor.Shapes.str(xs) + " does not fit W's input size " + w.dim(2));
        }
        int timeAxis = layout == 0 ? 0 : 1;
        int steps = xs[timeAxis];
        if (steps > MAX_STEPS) {
            throw bad("sequence length " + steps + " exceeds the limit of " + MAX_STEPS + " steps: kxai unrolls the "
                    + "recurrence into nodes per step (raise it with -Dkxai.max.recurrent.steps=N)");
        }
        if (steps < 1) {
            throw bad("sequence length " + steps + " (axis " + timeAxis + " of input " + dev.kxai.tensor.Shapes.str(xs)
                    + "): kxai unrolls the recurrence and needs a fixed length of at least 1");
        }
        for (int bi = 1; bi < LoadTime.BATCHES; bi++) {
            if (lt.shapeAt(x, bi, name)[timeAxis] != steps) {
                throw bad("the sequence axis " + timeAxis + " changes with the batch: is the batch axis where layout "
                        + layout + " puts it?");
            }
        }
        String initialH = input(5);
        String initialC = lstm ? input(6) : "";
        boolean linearBeforeReset = !lstm && a.i("linear_before_reset", 0) != 0;
        List<List<String>> hs = new ArrayList<>();
        List<String> lastH = new ArrayList<>();
        List<String> lastC = new ArrayList<>();
        for (int d = 0; d < dirs; d++) {
            boolean reverse = direction.equals("reverse") || d == 1;
            // the input projection of every step at once: X · Wᵀ (+ the biases that do not wait for r)
            Tensor wBias = vector(b, d, 0, gates * hidden);
            Tensor rBias = vector(b, d, gates * hidden, gates * hidden);
            Tensor inBias = lstm ? sum(wBias, rBias) : wBias;
            if (!lstm && !linearBeforeReset) {
                inBias = sum(wBias, rBias);
            } else if (!lstm) {
                float[] v = wBias.data().clone();
                for (int i = 0; i < 2 * hidden; i++) {
                    v[i] += rBias.data()[i]; // z and r take both biases up front; h̃'s recurrent bias stays inside r ⊙ (·)
                }
                inBias = new Tensor(wBias.shape(), v);
            }
            String proj = node(new Op.MatMul(), "MatMul", "input_projection", x,
                    constantValue("w_t", transposedBlock(w, d, 0, gates * hidden)));
            proj = node(new Op.Add(), "Add", "input_bias", proj, constantValue("in_bias", inBias));
            String rAll = constantValue("r_t", transposedBlock(r, d, 0, gates * hidden));
            String h = initialH.isEmpty() ? null : node(new Op.Select(0, new int[] {d}, new int[0]), "Gather", "h0", initialH);
            String c = initialC.isEmpty() ? null : node(new Op.Select(0, new int[] {d}, new int[0]), "Gather", "c0", initialC);
            String[] perStep = new String[steps];
            for (int k = 0; k < steps; k++) {
                int t = reverse ? steps - 1 - k : k;
                String xt = select(proj, timeAxis, t, 1, true); // [B, gates·H]
                if (lstm) {
                    String pre = h == null ? xt : node(new Op.Add(), "Add", "gates", xt,
                            node(new Op.MatMul(), "MatMul", "recurrent", h, rAll));
                    // ONNX's gate order: input, output, forget, cell
                    String i = node(new Op.Sigmoid(), "Sigmoid", "i", select(pre, 1, 0, hidden, false));
                    String o = node(new Op.Sigmoid(), "Sigmoid", "o", select(pre, 1, hidden, hidden, false));
                    String f = node(new Op.Sigmoid(), "Sigmoid", "f", select(pre, 1, 2 * hidden, hidden, false));
                    String g = node(new Op.Tanh(), "Tanh", "g", select(pre, 1, 3 * hidden, hidden, false));
                    String ig = node(new Op.Mul(), "Mul", "ig", i, g);
                    c = c == null ? ig : node(new Op.Add(), "Add", "c", node(new Op.Mul(), "Mul", "fc", f, c), ig);
                    h = node(new Op.Mul(), "Mul", "h", o, node(new Op.Tanh(), "Tanh", "tanh_c", c));
                } else {
                    // ONNX's gate order: update z, reset r, hidden h
                    String zr = select(xt, 1, 0, 2 * hidden, false);
                    String xh = select(xt, 1, 2 * hidden, hidden, false);
                    String hr = null;
                    if (h != null) {
                        String rec = node(new Op.MatMul(), "MatMul", "recurrent", h, rAll);
                        zr = node(new Op.Add(), "Add", "zr_pre", zr, select(rec, 1, 0, 2 * hidden, false));
                        hr = select(rec, 1, 2 * hidden, hidden, false);
                    }
                    String zrs = node(new Op.Sigmoid(), "Sigmoid", "zr", zr);
                    String z = select(zrs, 1, 0, hidden, false);
                    String rg = select(zrs, 1, hidden, hidden, false);
                    String recH;
                    if (linearBeforeReset) {
                        String rb = constantValue("rh_bias", vector(b, d, gates * hidden + 2 * hidden, hidden));
                        String inner = hr == null ? rb : node(new Op.Add(), "Add", "rh", hr, rb);
                        recH = node(new Op.Mul(), "Mul", "r_rh", rg, inner);
                    } else {
                        // (r ⊙ h) Rhᵀ; both h̃ biases were added up front
                        recH = h == null ? null : node(new Op.MatMul(), "MatMul", "rh", node(new Op.Mul(), "Mul", "r_h", rg, h),
                                constantValue("rh_t", transposedBlock(r, d, 2 * hidden, hidden)));
                    }
                    String cand = node(new Op.Tanh(), "Tanh", "candidate", recH == null ? xh
                            : node(new Op.Add(), "Add", "candidate_pre", xh, recH));
                    // h = (1 − z) ⊙ h̃ + z ⊙ h_prev
                    String oneMinusZ = node(new Op.Sub(), "Sub", "one_minus_z", constantValue("one", Tensor.scalar(1f)), z);
                    String next = node(new Op.Mul(), "Mul", "keep", oneMinusZ, cand);
                    h = h == null ? next : node(new Op.Add(), "Add", "h", next, node(new Op.Mul(), "Mul", "carry", z, h));
                }
                perStep[t] = h;
            }
            hs.add(List.of(perStep));
            lastH.add(h);
            lastC.add(c);
        }
        outputs(hs, lastH, lastC, layout, dirs);
    }

    /** Y [T, D, B, H] (layout 1: [B, T, D, H]), Y_h and Y_c [D, B, H] (layout 1: [B, D, H]), where read. */
    private void outputs(List<List<String>> hs, List<String> lastH, List<String> lastC, int layout, int dirs) {
        String y = n.getOutputCount() > 0 ? n.getOutput(0) : "";
        if (!y.isEmpty()) {
            List<String> perDir = new ArrayList<>();
            for (List<String> steps : hs) {
                List<String> expanded = new ArrayList<>();
                for (String h : steps) {
                    expanded.add(node(new Op.Unsqueeze(layout == 0 ? new int[] {0, 1} : new int[] {1, 2}), "Unsqueeze",
                            "y_t", h));
                }
                perDir.add(concat(expanded, layout == 0 ? 0 : 1, "y_dir"));
            }
            finish(concat(perDir, layout == 0 ? 1 : 2, "y"), y);
        }
        String[] finals = {n.getOutputCount() > 1 ? n.getOutput(1) : "", lstm && n.getOutputCount() > 2 ? n.getOutput(2) : ""};
        for (int k = 0; k < 2; k++) {
            if (finals[k].isEmpty()) {
                continue;
            }
            List<String> last = k == 0 ? lastH : lastC;
            List<String> expanded = new ArrayList<>();
            for (String v : last) {
                expanded.add(node(new Op.Unsqueeze(new int[] {layout == 0 ? 0 : 1}), "Unsqueeze", "final", v));
            }
            finish(concat(expanded, layout == 0 ? 0 : 1, "finals"), finals[k]);
        }
    }

    private String concat(List<String> parts, int axis, String what) {
        return parts.size() == 1 ? parts.get(0) : node(new Op.Concat(axis), "Concat", what, parts.toArray(String[]::new));
    }

    /** The node's named output, as an Identity of the value computed for it. */
    private void finish(String value, String output) {
        out.node(new Node(name + "/" + output, "Identity", new Op.Identity(), List.of(value), output));
    }
}
