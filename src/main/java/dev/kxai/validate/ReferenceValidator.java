package dev.kxai.validate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kxai.Inputs;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.Methods;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Runs reference cases ({@code manifest.json} folders, see the reference FORMAT.md) and compares
 * kxai's numbers with the stored ones: the model's logits, then every attribution case. A method
 * kxai does not implement yet is reported as unsupported, not as a failure. Validating a device
 * ({@code cuda}) validates that device: a case that fell back to the CPU did not run there and
 * counts as failed ({@code not run on cuda}), whatever its numbers.
 */
public final class ReferenceValidator {
    private static final ObjectMapper JSON = new ObjectMapper();

    public enum Status { PASS, FAIL, UNSUPPORTED }

    /** One checked case: the worst of the attribution and (if any) delta comparisons. */
    public record CaseResult(String model, String id, String method, Status status, Comparison attributions,
            Comparison delta, String detail) {
        public String line() {
            String nums = attributions == null ? "" : String.format("rel_l2=%.2e max_abs=%.2e", attributions.relL2(),
                    attributions.maxAbs());
            if (delta != null) {
                nums += String.format(" delta_max_abs=%.2e", delta.maxAbs());
            }
            return String.format("%-44s %-22s %-44s %s%s", model + "/" + id, method, nums,
                    status.name().toLowerCase(java.util.Locale.ROOT), detail == null ? "" : "  (" + detail + ")");
        }
    }

    public record Summary(int passed, int failed, int unsupported, List<CaseResult> results) {
        public String line() {
            return "validate: " + passed + " passed, " + failed + " failed, " + unsupported + " unsupported";
        }

        /** The counts of these results. */
        public static Summary of(List<CaseResult> all) {
            int p = 0;
            int f = 0;
            int u = 0;
            for (CaseResult r : all) {
                switch (r.status()) {
                    case PASS -> p++;
                    case FAIL -> f++;
                    case UNSUPPORTED -> u++;
                }
            }
            return new Summary(p, f, u, all);
        }
    }

    private final String device;
    /** Loads a case folder's model, its free input dimensions sized by the case's input files. */
    private final java.util.function.BiFunction<Path, dev.kxai.onnx.FreeDims, Model> loader;
    private final java.util.Set<String> methods;

    public ReferenceValidator(String device) {
        this(device, (model, dims) -> Model.load(model, device, null, dims), java.util.Set.of());
    }

    /** With a loader of its own (tests: a model on a simulated device named {@code device}). */
    public ReferenceValidator(String device, java.util.function.Function<Path, Model> loader) {
        this(device, (model, dims) -> loader.apply(model), java.util.Set.of());
    }

    private ReferenceValidator(String device, java.util.function.BiFunction<Path, dev.kxai.onnx.FreeDims, Model> loader,
            java.util.Set<String> methods) {
        this.device = device;
        this.loader = loader;
        this.methods = methods;
    }

    /** Only the cases of these methods (Captum's names; empty = all); every model's logits are still checked. */
    public ReferenceValidator onlyMethods(java.util.Collection<String> names) {
        return new ReferenceValidator(device, loader, java.util.Set.copyOf(names));
    }

    /** Every manifest.json under dir (or dir itself if it holds one), in path order. */
    public static List<Path> manifests(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new KxaiException("not a directory: " + dir);
        }
        try (Stream<Path> s = Files.walk(dir)) {
            List<Path> found = s.filter(p -> p.getFileName().toString().equals("manifest.json")).sorted().toList();
            if (found.isEmpty()) {
                throw new KxaiException("no manifest.json under " + dir);
            }
            return found;
        } catch (IOException e) {
            throw new KxaiException("cannot list " + dir + ": " + e.getMessage(), e);
        }
    }

    public Summary run(Path dir, Consumer<CaseResult> sink) {
        List<CaseResult> all = new ArrayList<>();
        for (Path manifest : manifests(dir)) {
            for (CaseResult r : runModel(manifest)) {
                sink.accept(r);
                all.add(r);
            }
        }
        return Summary.of(all);
    }

    /** The cases of one model folder; a model that cannot load fails every case with the reason. */
    public List<CaseResult> runModel(Path manifestFile) {
        Path folder = manifestFile.toAbsolutePath().getParent();
        JsonNode m;
        try {
            m = JSON.readTree(manifestFile.toFile());
        } catch (IOException e) {
            throw new KxaiException("cannot read " + manifestFile + ": " + e.getMessage(), e);
        }
        String name = m.path("name").asText(folder.getFileName().toString());
        List<CaseResult> out = new ArrayList<>();
        Model model;
        Inputs x;
        try {
            model = loader.apply(folder.resolve(m.path("model").asText("model.onnx")), freeDims(folder, m));
            x = inputs(folder, m, model);
        } catch (KxaiException e) {
            out.add(new CaseResult(name, "load", "-", Status.FAIL, null, null, e.getMessage()));
            return out;
        }
        try {
            // the model's (first) output: "logits" as FORMAT.md names it, else the manifest's only/first entry
            JsonNode outs = m.path("outputs");
            String logitsFile = outs.has("logits") ? outs.path("logits").asText("logits.npy")
                    : outs.isObject() && outs.size() > 0 ? outs.elements().next().asText("logits.npy") : "logits.npy";
            if (Files.exists(folder.resolve(logitsFile))) {
                try {
                    Tensor ref = NpyIO.read(folder.resolve(logitsFile));
                    model.check(x);
                    var ran = model.run("forward", r -> r.evaluate(x.values(), java.util.Set.of())
                            .get(r.graph().outputName()));
                    out.add(notRunOnDevice(judge(name, "logits", "forward", ran.value(), ref, null, null, null), ran.device(),
                            ran.fallbackReason()));
                } catch (KxaiException e) {
                    out.add(new CaseResult(name, "logits", "forward", Status.FAIL, null, null, e.getMessage()));
                }
            }
            int[] defaultTargets = ints(m.path("targets"));
            for (JsonNode c : m.path("cases")) {
                if (!methods.isEmpty() && !methods.contains(c.path("method").asText())) {
                    continue;
                }
                out.add(runCase(name, folder, model, x, c, defaultTargets));
            }
        } finally {
            model.close(); // frees its device memory before the next model loads
        }
        return out;
    }

    /**
     * The batch of a case folder: the manifest's {@code inputs} (several inputs: a float input that
     * is not attributed is an additional forward argument), else the single {@code input}.
     */
    static dev.kxai.onnx.FreeDims freeDims(Path folder, JsonNode m) {
        JsonNode list = m.path("inputs");
        java.util.Map<String, Path> files = new java.util.HashMap<>();
        Path single = null;
        if (!list.isArray() || list.isEmpty()) {
            single = folder.resolve(m.path("input").asText("input.npy"));
        } else {
            for (JsonNode i : list) {
                String name = i.path("name").asText();
                files.put(name, folder.resolve(i.path("file").asText(name + ".npy")));
            }
        }
        return dev.kxai.onnx.FreeDims.NONE.orFromFiles(files, single);
    }

    static Inputs inputs(Path folder, JsonNode m, Model model) {
        JsonNode list = m.path("inputs");
        if (!list.isArray() || list.isEmpty()) {
            return model.inputs(NpyIO.read(folder.resolve(m.path("input").asText("input.npy"))));
        }
        Inputs in = Inputs.empty();
        for (JsonNode i : list) {
            String name = i.path("name").asText();
            Tensor t = NpyIO.read(folder.resolve(i.path("file").asText(name + ".npy")));
            boolean integer = i.path("dtype").asText("float32").startsWith("int");
            boolean additional = !i.path("attributed").asBoolean(true) && !integer;
            in = additional ? in.additional(name, t) : in.and(name, t);
        }
        return in;
    }

    private CaseResult runCase(String model, Path folder, Model m, Inputs x, JsonNode c, int[] defaultTargets) {
        String id = c.path("id").asText();
        String method = c.path("method").asText();
        JsonNode params = c.path("params");
        int[] targets = c.has("target") ? ints(c.path("target")) : defaultTargets;
        try {
            if (!Methods.known(method)) {
                return new CaseResult(model, id, method, Status.UNSUPPORTED, null, null, "method not implemented yet");
            }
            java.util.Map<String, Object> p = new java.util.HashMap<>();
            p.put("abs", params.path("abs").asBoolean(true));
            p.put("multiply_by_inputs", params.path("multiply_by_inputs").asBoolean(true));
            p.put("n_steps", params.path("n_steps").asInt(50));
            p.put("method", params.path("method").asText("gausslegendre"));
            p.put("baselines", params.path("baselines").isArray() ? baselines(folder, params.path("baselines"))
                    : baseline(folder, params.path("baseline")));
            if (params.has("layer")) {
                p.put("layer", params.path("layer").asText());
            }
            p.put("return_convergence_delta", c.has("convergence_delta"));
            if (params.has("internal_batch_size")) {
                p.put("internal_batch_size", params.path("internal_batch_size").asInt());
            }
            perturbationParams(folder, params, p);
            // the defaults above are filled in for every method; each takes its own (Methods.create refuses others)
            Attribution a = Methods.create(method, m, Methods.Params.of(Methods.used(method, p))).attribute(x, targets);
            List<Tensor> refs = new ArrayList<>();
            List<Tensor> got = new ArrayList<>();
            JsonNode perInput = c.path("attributions_per_input");
            if (perInput.isArray() && perInput.size() > 0) {
                List<Tensor> mine = new ArrayList<>(a.byInput().values());
                if (mine.size() != perInput.size()) {
                    return new CaseResult(model, id, method, Status.FAIL, null, null, mine.size()
                            + " attributions for " + perInput.size() + " attributed inputs");
                }
                for (int i = 0; i < perInput.size(); i++) {
                    refs.add(NpyIO.read(folder.resolve(perInput.get(i).asText())));
                    got.add(mine.get(i));
                }
            } else {
                refs.add(NpyIO.read(folder.resolve(c.path("attributions").asText())));
                got.add(a.attributions());
            }
            Tensor refDelta = c.has("convergence_delta") ? NpyIO.read(folder.resolve(c.path("convergence_delta").asText()))
                    : null;
            CaseResult r = judge(model, id, method, joined(got), joined(refs), a.convergenceDelta(), refDelta,
                    joined(refs));
            if (r.status() == Status.FAIL && c.has("attributions_f64") && got.size() == 1) {
                // FORMAT.md: meeting the tolerance against Captum's float64 result also passes (float32
                // near-ties, where two correct float32 engines take different sides)
                CaseResult r64 = judge(model, id, method, got.get(0), NpyIO.read(folder.resolve(
                        c.path("attributions_f64").asText())), a.convergenceDelta(), refDelta, refs.get(0));
                JsonNode own64 = c.path("f32_vs_f64").path("rel_l2");
                if (r64.status() == Status.PASS) {
                    r = new CaseResult(model, id, method, Status.PASS, r64.attributions(), r64.delta(),
                            String.format("vs float64; vs float32 rel_l2=%.2e; vs float64 rel_l2=%.2e%s",
                                    r.attributions() == null ? Double.NaN : r.attributions().relL2(),
                                    r64.attributions() == null ? Double.NaN : r64.attributions().relL2(),
                                    own64.isNumber() ? String.format(", the float32 reference's own %.2e",
                                            own64.asDouble()) : ""));
                } else if (r64.attributions() != null) {
                    // say how far from float64 this is, next to how far Captum's own float32 result is
                    JsonNode own = c.path("f32_vs_f64").path("rel_l2");
                    r = new CaseResult(model, id, method, Status.FAIL, r.attributions(), r.delta(), String.format(
                            "vs float64 rel_l2=%.2e%s%s", r64.attributions().relL2(), own.isNumber()
                                    ? String.format(", the float32 reference's own %.2e", own.asDouble()) : "",
                            r.detail() == null ? "" : "; " + r.detail()));
                }
            }
            if (r.status() == Status.PASS && r.detail() == null && c.has("attributions_f64") && got.size() == 1) {
                // a pass against float32: still say how far from float64 it is, beside the float32
                // reference's own distance (bench/zoo.sh takes the medians of both over the zoo)
                Comparison vs64 = Comparison.of(got.get(0).data(), NpyIO.read(folder.resolve(
                        c.path("attributions_f64").asText())).data());
                JsonNode own = c.path("f32_vs_f64").path("rel_l2");
                r = new CaseResult(model, id, method, Status.PASS, r.attributions(), r.delta(), String.format(
                        "vs float64 rel_l2=%.2e%s", vs64.relL2(), own.isNumber()
                                ? String.format(", the float32 reference's own %.2e", own.asDouble()) : ""));
            }
            return notRunOnDevice(r, a.device(), a.fallbackReason());
        } catch (KxaiException e) {
            return new CaseResult(model, id, method, Status.FAIL, null, null, e.getMessage());
        }
    }

    /**
     * A case validated for a named device that fell back to the CPU did not run on that device: it
     * fails, saying so. With {@code auto} or {@code cpu} the CPU is what was asked for.
     */
    private CaseResult notRunOnDevice(CaseResult r, String ranOn, String fallbackReason) {
        String want = device == null ? "auto" : device.trim().toLowerCase(java.util.Locale.ROOT);
        if (fallbackReason == null || want.equals("auto") || want.equals(ranOn)) {
            return r;
        }
        return new CaseResult(r.model(), r.id(), r.method(), Status.FAIL, r.attributions(), r.delta(),
                "not run on " + want + ": ran on " + ranOn + " (" + fallbackReason + ")");
    }

    /**
     * Several attributions judged as one: each input's rows side by side ([batch, Σ per-row sizes]),
     * so the tolerances and the per-row mass of the delta cover every input together.
     */
    private static Tensor joined(List<Tensor> parts) {
        if (parts.size() == 1) {
            return parts.get(0);
        }
        int batch = parts.get(0).dim(0);
        int width = 0;
        for (Tensor t : parts) {
            if (t.dim(0) != batch) {
                return parts.get(0); // the shape check then reports the mismatch
            }
            width += t.rowSize();
        }
        float[] out = new float[batch * width];
        int off = 0;
        for (Tensor t : parts) {
            int per = t.rowSize();
            for (int r = 0; r < batch; r++) {
                System.arraycopy(t.data(), r * per, out, r * width + off, per);
            }
            off += per;
        }
        return new Tensor(new int[] {batch, width}, out);
    }

    /** The perturbation methods' parameters (Captum's names), where the case gives them. */
    private static void perturbationParams(Path folder, JsonNode params, java.util.Map<String, Object> p) {
        if (params.has("sliding_window_shapes")) {
            p.put("sliding_window_shapes", ints(params.path("sliding_window_shapes")));
        }
        JsonNode strides = params.path("strides");
        if (strides.isInt()) {
            p.put("strides", strides.asInt());
        } else if (strides.isArray()) {
            p.put("strides", ints(strides));
        }
        if (params.has("feature_mask")) {
            p.put("feature_mask", NpyIO.read(folder.resolve(params.path("feature_mask").asText())));
        }
        for (String k : List.of("relu_attributions", "attr_dim_summation")) {
            if (params.path(k).isBoolean()) {
                p.put(k, params.path(k).asBoolean());
            }
        }
        for (String k : List.of("n_samples", "perturbations_per_eval", "seed")) {
            if (params.path(k).isInt()) {
                p.put(k, params.path(k).asInt());
            }
        }
    }

    static List<Baseline> baselines(Path folder, JsonNode list) {
        List<Baseline> out = new ArrayList<>();
        for (JsonNode b : list) {
            out.add(baseline(folder, b));
        }
        return out;
    }

    static Baseline baseline(Path folder, JsonNode b) {
        if (b.isMissingNode() || b.isNull() || b.asText().equals("zeros")) {
            return Baseline.zeros();
        }
        if (b.isNumber()) {
            return Baseline.scalar((float) b.asDouble());
        }
        return Baseline.of(NpyIO.read(folder.resolve(b.asText())));
    }

    /**
     * Attributions pass when rel. L2 error ≤ 1e-4 and every element is within 1e-4·max|ref| + 1e-6
     * (FORMAT.md). A delta is a small difference of large sums, so its tolerance is scaled by the
     * attributions' total mass per row, not by the delta itself.
     */
    private static CaseResult judge(String model, String id, String method, Tensor got, Tensor ref, Tensor delta,
            Tensor refDelta, Tensor attrRef) {
        if (!java.util.Arrays.equals(got.shape(), ref.shape())) {
            return new CaseResult(model, id, method, Status.FAIL, null, null, "shape " + Shapes.str(got.shape())
                    + " vs reference " + Shapes.str(ref.shape()));
        }
        Comparison a = Comparison.of(got.data(), ref.data());
        boolean ok = a.within(1e-4, 1e-4 * a.maxRef() + 1e-6);
        Comparison d = null;
        String detail = null;
        if (refDelta != null) {
            if (delta == null || delta.size() != refDelta.size()) {
                return new CaseResult(model, id, method, Status.FAIL, a, null, "no convergence delta to compare");
            }
            d = Comparison.of(delta.data(), refDelta.data());
            double mass = 0;
            int per = attrRef.rowSize();
            for (int r = 0; r < attrRef.dim(0); r++) {
                double s = 0;
                for (int j = 0; j < per; j++) {
                    s += Math.abs(attrRef.data()[r * per + j]);
                }
                mass = Math.max(mass, s);
            }
            boolean deltaOk = d.maxAbs() <= 1e-4 * mass + 1e-6;
            if (!deltaOk) {
                detail = String.format("delta off by %.2e, allowed %.2e", d.maxAbs(), 1e-4 * mass + 1e-6);
            }
            ok &= deltaOk;
        }
        return new CaseResult(model, id, method, ok ? Status.PASS : Status.FAIL, a, d, detail);
    }

    private static int[] ints(JsonNode arr) {
        if (arr.isInt()) {
            return new int[] {arr.asInt()};
        }
        int[] t = new int[arr.size()];
        for (int i = 0; i < t.length; i++) {
            t[i] = arr.get(i).asInt();
        }
        return t;
    }
}
