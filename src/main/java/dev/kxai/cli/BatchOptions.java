package dev.kxai.cli;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.Methods;
import dev.kxai.attr.Progress;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/**
 * The model, the batch and a method's options on it, which {@code explain} and {@code metrics}
 * share (a picocli mixin): --model and --input (default: the bundled digits example), --additional,
 * --baseline, --target and the gradient methods' switches; and the method's Captum-named
 * parameters built from them.
 */
final class BatchOptions {
    private static final String EXAMPLE = "/dev/kxai/examples/digits_cnn/";

    @Option(names = "--model", paramLabel = "M.onnx", description = "ONNX model (default: bundled digits CNN).")
    Path modelFile;

    @Option(names = "--input", paramLabel = "[NAME=]X.npy", description = {"Batch to explain, .npy (default: bundled "
            + "digits). Repeat as NAME=FILE for a model with several inputs; float inputs are attributed, integer ones",
        "(token ids) are explained at a --layer that reads them."})
    List<String> inputArgs;

    @Option(names = "--image", paramLabel = "FILE|DIR", description = {"PNG or JPEG image(s) to explain instead of "
            + "--input (a folder: its .png/.jpg/.jpeg files in name order). Repeatable. Preprocessed by --preprocess, or by",
        "M.preprocess.json beside the model."})
    List<Path> imageArgs;

    @Option(names = "--preprocess", paramLabel = "imagenet|none|SPEC.json", description = "How --image files become the "
            + "model's input: a preset (imagenet: resize 256, crop 224, ImageNet mean/std; none: as they are, in [0, 1]) or a "
            + "JSON spec (resize, crop, mean, std, channel_order, scale, channels). Default: M.preprocess.json beside the model.")
    String preprocessArg;

    /** After {@link #inputs}: the images as the model saw them before normalisation (null without --image). */
    List<java.awt.image.BufferedImage> shownImages;
    /** After {@link #inputs}: the image files (null without --image). */
    List<Path> imageFiles;
    /** After {@link #inputs}: the preprocessing used (null without --image). */
    dev.kxai.image.Preprocess preprocess;

    @Option(names = "--dim", paramLabel = "NAME=SIZE", description = {"The size of a free input dimension beyond the "
            + "batch (an export's sequence_length; INPUT:AXIS for one with no name). Repeatable. Default: the size of",
        "that axis in the --input/--additional file given for the input."})
    List<String> dimArgs;

    @Option(names = "--additional", paramLabel = "NAME=X.npy", description = "An input given unchanged to every forward "
            + "pass and never attributed (Captum's additional_forward_args: a mask, a feature switch). Repeatable.")
    List<String> additionalArgs;

    @Option(names = "--baseline", paramLabel = "[NAME=]B",
            description = {"zeros (default), a number, or a .npy file (same shape as the input, or one example). With "
                + "several inputs: NAME=B per input (token ids: ids; zeros = id 0); one without a name applies to all."})
    List<String> baselineArgs;

    @Option(names = "--target", split = ",", paramLabel = "T", description = "Target output index, one or one per row "
            + "(default: predicted class). For an output with several axes per example (a segmenter's [C, H, W]), "
            + "Captum's tuple target as C:H:W, or the flat row-major index.")
    List<String> target;

    @Option(names = "--model-output", paramLabel = "NAME", description = "Explain this value instead of the model's first "
            + "output: another graph output (e.g. probabilities beside logits, one head of several) or any node's "
            + "output ('kxai info --model M' lists them).")
    String output;

    @Option(names = "--first-layer-saving", description = "Integrated Gradients: run the first Conv/Gemm twice per "
            + "example instead of n_steps times (faster; may differ from Captum at near-ties of max-pool/ReLU).")
    boolean firstLayerSaving;

    @Option(names = "--no-endpoint-reuse", description = "Integrated Gradients: compute F(x) and F(baseline) for the "
            + "convergence delta with an extra forward pass even when the rule evaluates alpha = 0 and 1 on the path.")
    boolean noEndpointReuse;

    @Option(names = "--no-abs", description = "Saliency: keep the gradient's sign.")
    boolean noAbs;

    /** Whether the bundled example runs (neither --model nor --input given). */
    boolean bundled() {
        if (inputArgs != null && imageArgs != null) {
            throw new InvalidInputException("give --input or --image, not both");
        }
        if (preprocessArg != null && imageArgs == null) {
            throw new InvalidInputException("--preprocess applies to --image files; give --image");
        }
        if ((modelFile == null) != (inputArgs == null && imageArgs == null)) {
            throw new InvalidInputException(imageArgs != null ? "--image needs --model"
                    : "give both --model and --input, or neither (for the bundled example)");
        }
        return modelFile == null;
    }

    /** The model on a device (auto, cpu, cuda; null = the environment's choice). */
    Model load(String device) throws IOException {
        if (bundled()) {
            return Model.load(bundledFile("model.onnx"), device, output);
        }
        return Model.load(modelFile, device, output, freeDims(dimArgs, inputArgs, additionalArgs));
    }

    /**
     * --dim sizes, and for a free dimension they do not name, that axis of the file given for the
     * input (--input NAME=FILE, a lone --input FILE for any input, --additional NAME=FILE); the files'
     * headers are read only when the model has such a dimension.
     */
    static dev.kxai.onnx.FreeDims freeDims(List<String> dimArgs, List<String> inputArgs, List<String> additionalArgs) {
        Map<String, Integer> sizes = new java.util.LinkedHashMap<>();
        for (String d : dimArgs != null ? dimArgs : List.<String>of()) {
            Map.Entry<String, Integer> e = dev.kxai.onnx.FreeDims.parse(d);
            if (sizes.put(e.getKey(), e.getValue()) != null) {
                throw new InvalidInputException("--dim " + d + ": " + e.getKey() + " is given twice");
            }
        }
        Map<String, Path> files = new java.util.HashMap<>();
        List<String> all = new java.util.ArrayList<>(inputArgs != null ? inputArgs : List.of());
        all.addAll(additionalArgs != null ? additionalArgs : List.of());
        Path lone = null;
        for (String arg : all) {
            int eq = arg.indexOf('=');
            if (eq > 0) {
                files.put(arg.substring(0, eq), Path.of(arg.substring(eq + 1)));
            } else {
                lone = Path.of(arg);
            }
        }
        return dev.kxai.onnx.FreeDims.of(sizes).orFromFiles(files, all.size() == 1 ? lone : null);
    }

    /** What the model file is, for a report's first line. */
    String describeModel() {
        return bundled() ? "bundled digits CNN" : modelFile.toString();
    }

    /** --input / --additional as {@link Inputs}: FILE alone for a single-input model, NAME=FILE otherwise; checked. */
    Inputs inputs(Model m) throws IOException {
        return inputs(m, Progress.NONE);
    }

    /** {@link #inputs(Model)}, reporting images read to {@code progress}. */
    Inputs inputs(Model m, Progress progress) throws IOException {
        if (!bundled() && imageArgs != null) {
            return imageInputs(m, progress);
        }
        List<String> given = bundled() ? List.of(bundledFile("input.npy").toString()) : inputArgs;
        Inputs in = Inputs.empty();
        for (String arg : given) {
            String[] kv = named(arg, "--input");
            if (kv[0] == null) {
                if (given.size() > 1 || m.inputs().size() > 1) {
                    throw new InvalidInputException("--input " + arg + ": the model has inputs " + m.describeInputs()
                            + "; give each as --input NAME=FILE");
                }
                kv[0] = m.graph().inputName();
            }
            Tensor t = NpyIO.read(Path.of(kv[1]));
            m.checkInput(kv[0], t, "input " + kv[1]);
            in = in.and(kv[0], t);
        }
        for (String arg : additionalArgs != null ? additionalArgs : List.<String>of()) {
            String[] kv = named(arg, "--additional");
            if (kv[0] == null) {
                throw new InvalidInputException("--additional " + arg + ": give it as NAME=FILE");
            }
            Tensor t = NpyIO.read(Path.of(kv[1]));
            m.checkInput(kv[0], t, "input " + kv[1]);
            in = in.additional(kv[0], t);
        }
        m.check(in);
        return in;
    }

    /** --image files through the preprocessing spec into the model's (only) input. */
    private Inputs imageInputs(Model m, Progress progress) {
        if (m.inputs().size() != 1) {
            throw new InvalidInputException("--image needs a model with one input; this one has " + m.describeInputs());
        }
        preprocess = preprocessArg != null ? dev.kxai.image.Preprocess.parse(preprocessArg)
                : dev.kxai.image.Preprocess.besideModel(modelFile);
        if (preprocess == null) {
            throw new InvalidInputException("--image: give --preprocess (imagenet, none, or a JSON spec) or put "
                    + dev.kxai.image.Preprocess.besideModelFile(modelFile) + " beside the model");
        }
        imageFiles = dev.kxai.image.Images.list(imageArgs);
        shownImages = new ArrayList<>();
        List<Tensor> rows = new ArrayList<>();
        int[] first = null;
        for (int i = 0; i < imageFiles.size(); i++) {
            Path f = imageFiles.get(i);
            java.awt.image.BufferedImage shown = preprocess.geometry(dev.kxai.image.Images.read(f));
            float[] row = preprocess.normalise(shown);
            int[] chw = {preprocess.channels(), shown.getHeight(), shown.getWidth()};
            if (first == null) {
                first = chw;
            } else if (!java.util.Arrays.equals(first, chw)) {
                throw new InvalidInputException("image " + f + " comes out " + java.util.Arrays.toString(chw) + " after "
                        + "preprocessing, " + imageFiles.get(0) + " " + java.util.Arrays.toString(first)
                        + ": give a crop in the preprocessing spec");
            }
            shownImages.add(shown);
            rows.add(new Tensor(new int[] {1, chw[0], chw[1], chw[2]}, row));
            progress.stepsDone(i + 1, imageFiles.size());
        }
        int per = rows.get(0).data().length;
        float[] data = new float[Math.multiplyExact(per, rows.size())];
        for (int i = 0; i < rows.size(); i++) {
            System.arraycopy(rows.get(i).data(), 0, data, i * per, per);
        }
        Tensor x = new Tensor(new int[] {rows.size(), first[0], first[1], first[2]}, data);
        String name = m.graph().inputName();
        m.checkInput(name, x, "images " + (imageFiles.size() == 1 ? imageFiles.get(0) : imageFiles.size() + " files")
                + " preprocessed by " + preprocess);
        Inputs in = Inputs.of(name, x);
        m.check(in);
        return in;
    }

    /** What the batch is, for a report's first line. */
    String describeInputs(Inputs in) {
        return bundled() ? "bundled digits" : imageFiles != null ? imageFiles.size() + " image(s) " + in : in.toString();
    }

    /** --target, or the predicted class of each row; checked against the model's outputs. */
    int[] targets(Model m, Inputs in, int[] predicted) {
        if (target == null) {
            return m.targets(predicted, in.batch());
        }
        int[] t = new int[target.size()];
        for (int i = 0; i < t.length; i++) {
            String arg = target.get(i).trim();
            try {
                if (arg.contains(":")) { // Captum's tuple target, e.g. (class, row, column) of a segmentation map
                    String[] parts = arg.split(":", -1);
                    int[] index = new int[parts.length];
                    for (int j = 0; j < parts.length; j++) {
                        index[j] = Integer.parseInt(parts[j].trim());
                    }
                    t[i] = m.target(index);
                } else {
                    t[i] = Integer.parseInt(arg);
                }
            } catch (NumberFormatException e) {
                throw new InvalidInputException("--target '" + arg + "' is not an output index (a whole number, or C:H:W "
                        + "coordinates for an output of shape " + java.util.Arrays.toString(m.outputShape()) + " per example)");
            }
        }
        return m.targets(t, in.batch());
    }

    /** {NAME, VALUE} of "NAME=VALUE", or {null, arg} when there is no name. */
    private static String[] named(String arg, String option) {
        int eq = arg.indexOf('=');
        if (eq < 0) {
            return new String[] {null, arg};
        }
        if (eq == 0 || eq == arg.length() - 1) {
            throw new InvalidInputException(option + " " + arg + ": expected NAME=VALUE");
        }
        return new String[] {arg.substring(0, eq), arg.substring(eq + 1)};
    }

    /**
     * --baseline as Captum's baselines: none (zeros), one for every input, or NAME=B per input
     * (those not named get zeros), in the order the method takes them (the attributed inputs, or
     * for a layer method every input that is not additional).
     */
    List<Baseline> baselines(Model m, Inputs in, boolean layerMethod) {
        if (baselineArgs == null || baselineArgs.isEmpty()) {
            return List.of(Baseline.zeros());
        }
        Map<String, Baseline> byName = new HashMap<>();
        Baseline all = null;
        for (String arg : baselineArgs) {
            String[] kv = named(arg, "--baseline");
            if (kv[0] == null) {
                if (all != null || baselineArgs.size() > 1) {
                    throw new InvalidInputException("--baseline " + arg + ": with several baselines name each: NAME=B");
                }
                all = parseBaseline(kv[1]);
            } else {
                if (in.get(kv[0]) == null || in.isAdditional(kv[0])) {
                    throw new InvalidInputException("--baseline " + arg + ": '" + kv[0] + "' is not an input given with "
                            + "--input (inputs: " + m.describeInputs() + ")");
                }
                byName.put(kv[0], parseBaseline(kv[1]));
            }
        }
        if (all != null) {
            return List.of(all);
        }
        List<Baseline> out = new ArrayList<>();
        for (dev.kxai.graph.Graph.Input gi : m.inputs()) {
            if (!in.isAdditional(gi.name()) && (layerMethod || !gi.integer())) {
                out.add(byName.getOrDefault(gi.name(), Baseline.zeros()));
            }
        }
        return out;
    }

    private static Baseline parseBaseline(String b) {
        if (b.equals("zeros")) {
            return Baseline.zeros();
        }
        try {
            return Baseline.scalar(Float.parseFloat(b));
        } catch (NumberFormatException e) {
            Tensor t = NpyIO.read(Path.of(b));
            int bad = t.firstNonFinite();
            if (bad >= 0) {
                throw new InvalidInputException("baseline " + b + " holds a non-finite value " + t.data()[bad]
                        + " at flat index " + bad);
            }
            return Baseline.of(t);
        }
    }

    /**
     * The method's parameters (Captum's names) from the shared options: n_steps, method, baselines,
     * the switches, internal_batch_size, the layer (where given) and the perturbation options.
     */
    Map<String, Object> params(AttributionOptions run, PerturbationOptions perturbation, Model m, Inputs in, String layer,
            Progress progress) {
        Map<String, Object> params = new HashMap<>(Map.of("n_steps", run.steps, "method", run.rule,
                "baselines", baselines(m, in, layer != null), "return_convergence_delta", true, "progress", progress,
                "affine_first_layer", firstLayerSaving, "reuse_endpoints", !noEndpointReuse, "abs", !noAbs));
        if (run.internalBatchSize != null) {
            params.put("internal_batch_size", run.internalBatchSize);
        }
        if (layer != null) {
            // a layer the method never reads was silently ignored (issue 13's hostile inputs)
            dev.kxai.attr.Methods.Entry e = dev.kxai.attr.Methods.find(run.method);
            if (e != null && !e.parameters().contains("layer")) {
                throw new dev.kxai.InvalidInputException("--layer " + layer + ": method " + e.name()
                        + " takes no layer (layer methods: layer_ig, layer_grad_cam, layer_conductance, ...)");
            }
            params.put("layer", layer);
        }
        perturbation.addTo(params, m, in);
        return params;
    }

    /** The options that set each method parameter (an option the method does not use is named in the error). */
    private static final Map<String, List<String>> OPTIONS = Map.ofEntries(
            Map.entry("n_steps", List.of("--steps")), Map.entry("method", List.of("--rule")),
            Map.entry("baselines", List.of("--baseline")), Map.entry("internal_batch_size", List.of("--internal-batch-size")),
            Map.entry("affine_first_layer", List.of("--first-layer-saving")),
            Map.entry("reuse_endpoints", List.of("--no-endpoint-reuse")), Map.entry("abs", List.of("--no-abs")),
            Map.entry("layer", List.of("--layer")), Map.entry("sliding_window_shapes", List.of("--sliding-window")),
            Map.entry("strides", List.of("--strides")), Map.entry("feature_mask", List.of("--feature-mask", "--superpixels")),
            Map.entry("n_samples", List.of("--n-samples")), Map.entry("seed", List.of("--seed")),
            Map.entry("perturbations_per_eval", List.of("--perturbations-per-eval")), Map.entry("samples", List.of("--samples")),
            Map.entry("weights", List.of("--sample-weights")), Map.entry("interpretable_model", List.of("--interpretable-model")),
            Map.entry("alpha", List.of("--alpha")), Map.entry("kernel_width", List.of("--kernel-width")),
            Map.entry("neuron", List.of("--neuron")), Map.entry("rules", List.of("--lrp-rule")),
            Map.entry("nt_type", List.of("--noise-tunnel")), Map.entry("nt_samples", List.of("--nt-samples")),
            Map.entry("nt_samples_batch_size", List.of("--nt-samples-batch-size")), Map.entry("stdevs", List.of("--stdevs")),
            Map.entry("upsample_to_input", List.of("--upsample-to-input")), Map.entry("fraction", List.of("--fraction")),
            Map.entry("max_dist", List.of("--max-dist")), Map.entry("max_sigma", List.of("--max-sigma")),
            Map.entry("grad_step", List.of("--grad-step")), Map.entry("sqrt", List.of("--blur-sqrt")),
            Map.entry("alphas", List.of("--alphas")), Map.entry("alpha_weights", List.of("--alpha-weights")),
            Map.entry("iterations", List.of("--iterations")), Map.entry("lr", List.of("--lr")),
            Map.entry("lr_schedule", List.of("--lr-schedule")), Map.entry("l2", List.of("--l2")), Map.entry("tv", List.of("--tv")),
            Map.entry("jitter", List.of("--jitter")), Map.entry("blur_every", List.of("--blur-every")),
            Map.entry("blur_sigma", List.of("--blur-sigma")), Map.entry("init", List.of("--init")),
            Map.entry("noise_std", List.of("--noise-std")), Map.entry("channel", List.of("--channel")));

    /**
     * The parameters of {@code params} the method takes. An option given on the command line whose parameter
     * the method does not take is an error naming the option and the method (it used to be ignored without a
     * word, issue 13: {@code --method ig --feature-mask f.npy}); the values filled in for every method (the
     * defaults of --steps, --rule, --baseline, --seed, ...) are dropped where the method does not take them.
     */
    static Map<String, Object> forMethod(picocli.CommandLine.Model.CommandSpec spec, String method, Map<String, Object> params) {
        picocli.CommandLine.ParseResult given = spec.commandLine().getParseResult();
        boolean tunnel = params.get("nt_type") != null;
        java.util.Set<String> takes = Methods.parameters(method, tunnel);
        String name = Methods.entry(method).name();
        for (String k : new java.util.TreeSet<>(params.keySet())) {
            if (takes.contains(k)) {
                continue;
            }
            for (String option : OPTIONS.getOrDefault(k, List.of())) {
                if (given != null && given.hasMatchedOption(option)) {
                    java.util.Set<String> own = Methods.parameters(method, false);
                    java.util.SortedSet<String> usable = new java.util.TreeSet<>();
                    own.forEach(p -> usable.addAll(OPTIONS.getOrDefault(p, List.of())));
                    boolean tunnelOption = k.equals("nt_samples") || k.equals("nt_samples_batch_size") || k.equals("stdevs");
                    throw new InvalidInputException(option + ": method " + name + " does not use it"
                            + (tunnelOption && !tunnel ? " without --noise-tunnel" : "") + "; the options it uses: "
                            + (usable.isEmpty() ? "none" : String.join(", ", usable))
                            + (tunnel ? "" : " (and with --noise-tunnel TYPE: --nt-samples, --nt-samples-batch-size, --stdevs, --seed)"));
                }
            }
        }
        return Methods.used(method, params);
    }

    /** The method named by --method with {@link #params}. */
    Methods.Method method(AttributionOptions run, PerturbationOptions perturbation, Model m, Inputs in, String layer,
            Progress progress) {
        String name = Methods.entry(run.method).name();
        return Methods.create(name, m, Methods.Params.of(Methods.used(name, params(run, perturbation, m, in, layer, progress))));
    }

    @Option(names = "--progress", paramLabel = "MODE", description = "auto (default: a bar on a terminal, plain lines "
            + "otherwise; KXAI_PROGRESS sets it), bar, lines or off. On stderr.")
    String progressMode;

    /** Progress of the path integration on stderr (see {@link ProgressBar}). */
    Progress progress(CommandSpec spec) {
        return progress(spec, "integrating", "steps");
    }

    /** A progress reporter on stderr for {@code what}, counted in {@code unit}. */
    ProgressBar progress(CommandSpec spec, String what, String unit) {
        return ProgressBar.of(spec.commandLine().getErr(), what, unit, progressMode);
    }

    /** Copies a bundled example file out of the jar (the readers need a file). */
    static Path bundledFile(String name) throws IOException {
        try (InputStream in = BatchOptions.class.getResourceAsStream(EXAMPLE + name)) {
            if (in == null) {
                throw new KxaiException("bundled example " + name + " is missing from the jar");
            }
            Path dir = Files.createTempDirectory("kxai-example");
            dir.toFile().deleteOnExit();
            Path f = dir.resolve(name);
            Files.copy(in, f, StandardCopyOption.REPLACE_EXISTING);
            f.toFile().deleteOnExit();
            return f;
        }
    }

    /**
     * Checks, before any work, that the results can be written under {@code --out}: it is a folder, or
     * its nearest existing ancestor is a folder, and a file can be created there (a probe file, deleted at
     * once: permissions, read-only mounts and ACLs all show). The error names the path at fault.
     */
    static void checkOut(Path out) {
        if (out == null) {
            return;
        }
        Path abs = out.toAbsolutePath().normalize();
        if (Files.exists(abs) && !Files.isDirectory(abs)) {
            throw new InvalidInputException("--out " + out + " exists and is not a folder");
        }
        Path dir = abs;
        while (dir != null && !Files.exists(dir)) {
            dir = dir.getParent();
        }
        if (dir == null) {
            throw new InvalidInputException("--out " + out + ": no part of the path exists");
        }
        if (!Files.isDirectory(dir)) {
            throw new InvalidInputException("--out " + out + ": cannot create the folder, " + dir + " is a file, not a folder");
        }
        try {
            Path probe = Files.createTempFile(dir, ".kxai-write-check", ".tmp");
            Files.deleteIfExists(probe);
        } catch (IOException | SecurityException e) {
            throw new InvalidInputException("--out " + out + ": cannot write into " + dir
                    + (dir.equals(abs) ? "" : " (to create the folder)") + ": "
                    + (e instanceof java.nio.file.AccessDeniedException ? "permission denied"
                    : e instanceof java.nio.file.FileSystemException fs && fs.getReason() != null ? fs.getReason()
                    : String.valueOf(e.getMessage())));
        }
    }
}
