package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Einsum rewritten at load into ReduceSum, Transpose, Reshape and MatMul (see {@link Lowerings}).
 * Operands are contracted left to right, two at a time: a letter only one operand has and nothing
 * later needs is summed out first; the letters both share and something later needs are batch
 * dimensions, the ones both share and nothing later needs are contracted, the rest are free. Each
 * operand is transposed to [batch, free, contracted] (the right one to [batch, contracted, free]),
 * viewed as [batch, M, K] and [batch, K, N], multiplied, and viewed back to [batch, free_left,
 * free_right]; the result is finally transposed to the output's order. Covers the transformer
 * patterns (bhqd,bhkd->bhqk; bhqk,bhkd->bhqd; bnd,de->bne; ij,jk->ik; bi,bi->b), outer products and
 * traces-free reductions; an ellipsis stands for the same leading dimensions in every operand.
 * Refused: a letter repeated within one operand (diagonals), and a dimension that depends on the
 * batch being contracted.
 */
final class Einsum {
    private Einsum() {
    }

    /** An operand: a value and one letter per axis. */
    private record Term(String value, String letters) {
    }

    static void lower(OnnxMl.NodeProto n, String name, String source, LoadTime lt, Decompositions.Sink out) {
        Lowerings.Emit e = new Lowerings.Emit(n, name, source, lt, out);
        Attrs a = new Attrs(n, name, source);
        String eq = a.s("equation", null);
        if (eq == null) {
            throw new ModelException(source + ": node '" + name + "' (Einsum) lacks the required attribute equation");
        }
        List<String> ins = e.present();
        String spec = eq.replace(" ", "");
        String lhs = spec.contains("->") ? spec.substring(0, spec.indexOf("->")) : spec;
        String[] parts = lhs.split(",", -1);
        if (parts.length != ins.size() || ins.isEmpty()) {
            throw a.bad("Einsum", "equation", "'" + eq + "'", "one term per input (" + ins.size() + " inputs)");
        }
        // the ellipsis: the same number of leading dimensions in every operand, as capital letters
        int ellipsis = -1;
        List<Term> terms = new ArrayList<>();
        for (int i = 0; i < parts.length; i++) {
            int rank = out.shape(ins.get(i), name).length;
            String p = parts[i];
            if (p.contains("...")) {
                int k = rank - (p.length() - 3);
                if (ellipsis >= 0 && ellipsis != k || k < 0) {
                    throw a.bad("Einsum", "equation", "'" + eq + "'", "an ellipsis of the same rank in every operand");
                }
                ellipsis = k;
                p = p.replace("...", capitals(k));
            }
            check(a, eq, p, rank);
            terms.add(new Term(ins.get(i), p));
        }
        String output;
        if (spec.contains("->")) {
            output = spec.substring(spec.indexOf("->") + 2).replace("...", capitals(Math.max(ellipsis, 0)));
            check(a, eq, output, output.length());
        } else {
            // implicit output: the ellipsis, then the letters that occur once, in alphabetical order
            StringBuilder once = new StringBuilder(capitals(Math.max(ellipsis, 0)));
            String all = String.join("", parts).replace("...", "");
            all.chars().filter(Character::isLowerCase).distinct().sorted()
                    .filter(c -> all.indexOf(c) == all.lastIndexOf(c)).forEach(c -> once.append((char) c));
            output = once.toString();
        }
        for (char c : output.toCharArray()) {
            if (terms.stream().noneMatch(t -> t.letters.indexOf(c) >= 0)) {
                throw a.bad("Einsum", "equation", "'" + eq + "'", "output letters that occur in an input");
            }
        }
        Term r = reduceUnused(e, terms.get(0), needed(terms, 1, output), 0);
        for (int i = 1; i < terms.size(); i++) {
            String later = needed(terms, i + 1, output);
            Term b = reduceUnused(e, terms.get(i), later + r.letters, i);
            r = contract(e, r, b, later, i);
        }
        int[] perm = new int[output.length()];
        for (int d = 0; d < perm.length; d++) {
            perm[d] = r.letters.indexOf(output.charAt(d));
        }
        if (r.letters.length() != output.length()) {
            throw new IllegalStateException("einsum " + eq + ": " + r.letters + " vs " + output);
        }
        boolean identity = true;
        for (int d = 0; d < perm.length; d++) {
            identity &= perm[d] == d;
        }
        e.last(identity ? "Identity" : "Transpose", identity ? new Op.Identity() : new Op.Transpose(perm), r.value);
    }

    private static String capitals(int k) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < k; i++) {
            s.append((char) ('A' + i));
        }
        return s.toString();
    }

    /** Letters only, one per axis, none repeated. */
    private static void check(Attrs a, String eq, String letters, int rank) {
        if (letters.length() != rank) {
            throw a.bad("Einsum", "equation", "'" + eq + "'", "one letter per axis ('" + letters + "' for rank " + rank + ")");
        }
        for (int i = 0; i < letters.length(); i++) {
            char c = letters.charAt(i);
            if (!Character.isLetter(c)) {
                throw a.bad("Einsum", "equation", "'" + eq + "'", "letters, commas, '->' and '...'");
            }
            if (letters.indexOf(c) != i) {
                throw a.bad("Einsum", "equation", "'" + eq + "'", "no letter twice in one term (diagonals are not "
                        + "supported)");
            }
        }
    }

    /** The letters the operands from {@code from} on and the output use. */
    private static String needed(List<Term> terms, int from, String output) {
        StringBuilder s = new StringBuilder(output);
        for (int i = from; i < terms.size(); i++) {
            s.append(terms.get(i).letters);
        }
        return s.toString();
    }

    /** Sums out the axes whose letters nothing else uses. */
    private static Term reduceUnused(Lowerings.Emit e, Term t, String others, int index) {
        List<Integer> axes = new ArrayList<>();
        StringBuilder kept = new StringBuilder();
        for (int d = 0; d < t.letters.length(); d++) {
            if (others.indexOf(t.letters.charAt(d)) < 0) {
                axes.add(d);
            } else {
                kept.append(t.letters.charAt(d));
            }
        }
        if (axes.isEmpty()) {
            return t;
        }
        noBatch(e, t, axes);
        String v = e.node("sum" + index, "ReduceSum", new Op.Reduce(Op.Reduce.Kind.SUM,
                axes.stream().mapToInt(Integer::intValue).toArray(), false), t.value);
        return new Term(v, kept.toString());
    }

    /** Refuses summing over an axis whose size depends on the batch (it would mix examples). */
    private static void noBatch(Lowerings.Emit e, Term t, List<Integer> axes) {
        int[] s0 = e.lt.shapeAt(t.value, 0, e.name);
        int[] s1 = e.lt.shapeAt(t.value, 1, e.name);
        for (int d : axes) {
            if (s0[d] != s1[d]) {
                throw new ModelException(e.source + ": node '" + e.name + "' (Einsum): sums over axis " + d + " of '"
                        + t.value + "', whose size depends on the batch");
            }
        }
    }

    /** Contracts two operands; the result's letters are batch, left free, right free. */
    private static Term contract(Lowerings.Emit e, Term a, Term b, String later, int index) {
        StringBuilder batch = new StringBuilder();
        StringBuilder contracted = new StringBuilder();
        StringBuilder leftFree = new StringBuilder();
        StringBuilder rightFree = new StringBuilder();
        for (char c : a.letters.toCharArray()) {
            boolean inB = b.letters.indexOf(c) >= 0;
            boolean keep = later.indexOf(c) >= 0;
            (inB ? keep ? batch : contracted : leftFree).append(c);
        }
        for (char c : b.letters.toCharArray()) {
            if (a.letters.indexOf(c) < 0) {
                rightFree.append(c);
            }
        }
        List<Integer> summed = new ArrayList<>();
        for (char c : contracted.toString().toCharArray()) {
            summed.add(a.letters.indexOf(c));
        }
        noBatch(e, a, summed);
        String p = "c" + index + "_";
        int nb = batch.length();
        String left = view(e, a, batch + "" + leftFree + contracted, nb, nb + leftFree.length(), p + "left");
        String right = view(e, b, batch + "" + contracted + rightFree, nb, nb + contracted.length(), p + "right");
        // [batch, M, K] × [batch, K, N]
        String product = e.node(p + "product", "MatMul", new Op.MatMul(), left, right);
        String letters = batch + "" + leftFree + rightFree;
        int[] target = dims(e, a, b, letters, batch.length());
        String v = e.node(p + "result", "Reshape", new Op.Reshape(false), product,
                e.constant(p + "result_shape", floats(target)));
        return new Term(v, letters);
    }

    /**
     * An operand transposed to {@code order} and viewed as [batch..., M, K]: M the product of the axes
     * [batch, split), K of the rest (-1 for a group that holds the batch-dependent axis).
     */
    private static String view(Lowerings.Emit e, Term t, String order, int batch, int split, String suffix) {
        int[] perm = new int[order.length()];
        boolean identity = true;
        for (int d = 0; d < perm.length; d++) {
            perm[d] = t.letters.indexOf(order.charAt(d));
            identity &= perm[d] == d;
        }
        String v = identity ? t.value : e.node(suffix + "_moved", "Transpose", new Op.Transpose(perm), t.value);
        int[] s0 = e.lt.shapeAt(t.value, 0, e.name);
        int[] s1 = e.lt.shapeAt(t.value, 1, e.name);
        long[] group = {1, 1};
        boolean[] varies = {false, false};
        float[] target = new float[batch + 2];
        for (int d = 0; d < order.length(); d++) {
            int ax = perm[d];
            if (d < batch) {
                target[d] = s0[ax] != s1[ax] ? -1 : s0[ax];
                continue;
            }
            int gi = d < split ? 0 : 1;
            group[gi] *= s0[ax];
            varies[gi] |= s0[ax] != s1[ax];
        }
        target[batch] = varies[0] ? -1 : group[0];
        target[batch + 1] = varies[1] ? -1 : group[1];
        return e.node(suffix, "Reshape", new Op.Reshape(false), v, e.constant(suffix + "_shape",
                new Tensor(new int[] {target.length}, target)));
    }

    /** The result's shape target: batch dims and free dims as at batch 1, -1 for the one that varies. */
    private static int[] dims(Lowerings.Emit e, Term a, Term b, String letters, int batch) {
        int[] r = new int[letters.length()];
        for (int d = 0; d < r.length; d++) {
            char c = letters.charAt(d);
            Term t = a.letters.indexOf(c) >= 0 ? a : b;
            int ax = t.letters.indexOf(c);
            int s0 = e.lt.shapeAt(t.value, 0, e.name)[ax];
            int s1 = e.lt.shapeAt(t.value, 1, e.name)[ax];
            r[d] = s0 != s1 ? -1 : s0;
        }
        return r;
    }

    private static Tensor floats(int[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = v[i];
        }
        return new Tensor(new int[] {f.length}, f);
    }
}
