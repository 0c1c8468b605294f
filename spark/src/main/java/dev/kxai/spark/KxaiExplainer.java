package dev.kxai.spark;

import dev.kxai.InvalidInputException;
import dev.kxai.attr.Methods;
import dev.kxai.graph.Graph;
import dev.kxai.onnx.OnnxImporter;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.StringArrayParam;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.IntegralType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * kxai as a Spark ML {@link Transformer}: explains every row of a Dataset with an ONNX model and one of
 * kxai's methods (Captum's names and defaults, {@code kxai explain}'s numbers), appending five columns:
 * {@code outputCol} (array&lt;float&gt;: the attributions, the example's shape flattened), {@code deltaCol}
 * (float: the convergence delta, null for methods without one), {@code explainedTargetCol} (int: the
 * target explained, the predicted class where the row gives none), {@code deviceCol} (where it ran) and
 * {@code errorCol} (null, or why the row could not be explained; its other new columns are then null).
 *
 * <p>The input column holds one example per row: an array of numbers (flattened in C order), a binary
 * {@code .npy}, or an image struct ({@code spark.read.format("image")}, with {@link #setPreprocess}). The
 * driver reads the model file (any Hadoop path: local, HDFS, S3) and broadcasts its bytes; each executor
 * JVM loads it once and shares it between its tasks ({@link ModelCache}), on the GPU Spark assigned to the
 * task or the CPU ({@link DeviceChoice}). The same work without the Transformer:
 * {@code df.mapPartitions(ex.partitionFunction(df), ex.encoder(df.schema()))}.
 *
 * <pre>{@code
 * Dataset<Row> out = new KxaiExplainer().setModelPath("hdfs:///models/m.onnx").setInputCol("pixels")
 *         .setMethod("ig").setSteps(50).setBatchSize(64).transform(df);
 * }</pre>
 */
public final class KxaiExplainer extends Transformer {
    private static final long serialVersionUID = 1L;

    private final String uid;
    private final Param<String> modelPath;
    private final Param<String> inputCol;
    private final Param<String> targetCol;
    private final Param<String> outputCol;
    private final Param<String> deltaCol;
    private final Param<String> explainedTargetCol;
    private final Param<String> deviceCol;
    private final Param<String> errorCol;
    private final Param<String> method;
    private final IntParam steps;
    private final Param<String> rule;
    private final Param<String> baseline;
    private final IntParam internalBatchSize;
    private final Param<String> layer;
    private final BooleanParam firstLayerSaving;
    private final BooleanParam abs;
    private final LongParam seed;
    private final StringArrayParam methodParams;
    private final Param<String> device;
    private final IntParam batchSize;
    private final BooleanParam batchInvariant;
    private final Param<String> preprocess;

    public KxaiExplainer() {
        this(Identifiable$.MODULE$.randomUID("kxaiExplainer"));
    }

    public KxaiExplainer(String uid) {
        // the parameters are made here, after the uid: a Param records its parent's uid when created
        this.uid = uid;
        modelPath = new Param<>(this, "modelPath", "the ONNX model: a local or Hadoop path");
        inputCol = new Param<>(this, "inputCol", "one example per row: array of numbers, .npy binary or image struct");
        targetCol = new Param<>(this, "targetCol", "optional integer column: the output to explain (null or absent: the predicted class)");
        outputCol = new Param<>(this, "outputCol", "attributions column (array<float>)");
        deltaCol = new Param<>(this, "deltaCol", "convergence delta column (float)");
        explainedTargetCol = new Param<>(this, "explainedTargetCol", "the target explained (int)");
        deviceCol = new Param<>(this, "deviceCol", "where the row was explained (string)");
        errorCol = new Param<>(this, "errorCol", "why a row failed, else null (string)");
        method = new Param<>(this, "method", "kxai's method name or alias (kxai explain --method): ig, saliency, deeplift, ...");
        steps = new IntParam(this, "steps", "n_steps of the path methods");
        rule = new Param<>(this, "rule", "the path methods' integration rule (gausslegendre, riemann_left, riemann_right, riemann_middle, riemann_trapezoid)");
        baseline = new Param<>(this, "baseline", "zeros or a number");
        internalBatchSize = new IntParam(this, "internalBatchSize", "rows per forward/backward pass inside a method (0: from kxai's memory budget)");
        layer = new Param<>(this, "layer", "the layer of layer methods (a value name)");
        firstLayerSaving = new BooleanParam(this, "firstLayerSaving", "Integrated Gradients' first-layer saving "
                + "(faster, not bit-equal to Captum: off by default)");
        abs = new BooleanParam(this, "abs", "saliency: absolute gradients");
        seed = new LongParam(this, "seed", "seed of the sampling methods");
        methodParams = new StringArrayParam(this, "methodParams", "more Captum-named parameters as NAME=VALUE (n_samples=50, sliding_window_shapes=1,3,3, ...)");
        device = new Param<>(this, "device", "auto (the task's GPU, else the CPU), cpu or cuda");
        batchSize = new IntParam(this, "batchSize", "rows per attribution call within a partition");
        batchInvariant = new BooleanParam(this, "batchInvariant", "dense layers accumulated in double so that a row's numbers do not depend on the rows batched with it, hence not on the partitioning (on by default; kxai explain --batch-invariant computes the same)");
        preprocess = new Param<>(this, "preprocess", "image structs: imagenet, none, or a JSON preprocessing spec");
        setDefault(inputCol, "input");
        setDefault(outputCol, "attributions");
        setDefault(deltaCol, "delta");
        setDefault(explainedTargetCol, "explained_target");
        setDefault(deviceCol, "device");
        setDefault(errorCol, "error");
        setDefault(method, "ig");
        setDefault(steps, 50);
        setDefault(rule, "gausslegendre");
        setDefault(baseline, "zeros");
        setDefault(internalBatchSize, 0);
        setDefault(firstLayerSaving, false);
        setDefault(abs, true);
        setDefault(seed, 0L);
        setDefault(methodParams, new String[0]);
        setDefault(device, "auto");
        setDefault(batchSize, 64);
        setDefault(batchInvariant, true);
    }

    @Override
    public String uid() {
        return uid;
    }

    // Spark lists a Params' parameters through its public no-argument methods returning Param
    public Param<String> modelPath() { return modelPath; }
    public Param<String> inputCol() { return inputCol; }
    public Param<String> targetCol() { return targetCol; }
    public Param<String> outputCol() { return outputCol; }
    public Param<String> deltaCol() { return deltaCol; }
    public Param<String> explainedTargetCol() { return explainedTargetCol; }
    public Param<String> deviceCol() { return deviceCol; }
    public Param<String> errorCol() { return errorCol; }
    public Param<String> method() { return method; }
    public IntParam steps() { return steps; }
    public Param<String> rule() { return rule; }
    public Param<String> baseline() { return baseline; }
    public IntParam internalBatchSize() { return internalBatchSize; }
    public Param<String> layer() { return layer; }
    public BooleanParam firstLayerSaving() { return firstLayerSaving; }
    public BooleanParam abs() { return abs; }
    public LongParam seed() { return seed; }
    public StringArrayParam methodParams() { return methodParams; }
    public Param<String> device() { return device; }
    public IntParam batchSize() { return batchSize; }
    public BooleanParam batchInvariant() { return batchInvariant; }
    public Param<String> preprocess() { return preprocess; }

    public KxaiExplainer setModelPath(String v) { set(modelPath, v); return this; }
    public KxaiExplainer setInputCol(String v) { set(inputCol, v); return this; }
    public KxaiExplainer setTargetCol(String v) { set(targetCol, v); return this; }
    public KxaiExplainer setOutputCol(String v) { set(outputCol, v); return this; }
    public KxaiExplainer setDeltaCol(String v) { set(deltaCol, v); return this; }
    public KxaiExplainer setExplainedTargetCol(String v) { set(explainedTargetCol, v); return this; }
    public KxaiExplainer setDeviceCol(String v) { set(deviceCol, v); return this; }
    public KxaiExplainer setErrorCol(String v) { set(errorCol, v); return this; }
    public KxaiExplainer setMethod(String v) { set(method, v); return this; }
    public KxaiExplainer setSteps(int v) { set(steps, v); return this; }
    public KxaiExplainer setRule(String v) { set(rule, v); return this; }
    public KxaiExplainer setBaseline(String v) { set(baseline, v); return this; }
    public KxaiExplainer setInternalBatchSize(int v) { set(internalBatchSize, v); return this; }
    public KxaiExplainer setLayer(String v) { set(layer, v); return this; }
    public KxaiExplainer setFirstLayerSaving(boolean v) { set(firstLayerSaving, v); return this; }
    public KxaiExplainer setAbs(boolean v) { set(abs, v); return this; }
    public KxaiExplainer setSeed(long v) { set(seed, v); return this; }
    public KxaiExplainer setMethodParams(String... v) { set(methodParams, v); return this; }
    public KxaiExplainer setDevice(String v) { set(device, v); return this; }
    public KxaiExplainer setBatchSize(int v) { set(batchSize, v); return this; }
    public KxaiExplainer setBatchInvariant(boolean v) { set(batchInvariant, v); return this; }
    public KxaiExplainer setPreprocess(String v) { set(preprocess, v); return this; }

    private String value(Param<String> p) {
        return getOrDefault(p);
    }

    private int value(IntParam p) {
        return (Integer) getOrDefault(p);
    }

    private long value(LongParam p) {
        return (Long) getOrDefault(p);
    }

    private boolean value(BooleanParam p) {
        return (Boolean) getOrDefault(p);
    }

    @Override
    public StructType transformSchema(StructType schema) {
        String in = value(inputCol);
        if (!Arrays.asList(schema.fieldNames()).contains(in)) {
            throw new InvalidInputException("no input column '" + in + "'; columns: " + String.join(", ", schema.fieldNames()));
        }
        InputKind.of(in, schema.apply(in).dataType());
        if (isDefined(targetCol)) {
            String t = value(targetCol);
            if (!Arrays.asList(schema.fieldNames()).contains(t) || !(schema.apply(t).dataType() instanceof IntegralType)) {
                throw new InvalidInputException("target column '" + t + "' must be an integer column of the input");
            }
        }
        StructType out = schema;
        for (StructField f : List.of(
                DataTypes.createStructField(value(outputCol), DataTypes.createArrayType(DataTypes.FloatType, false), true),
                DataTypes.createStructField(value(deltaCol), DataTypes.FloatType, true),
                DataTypes.createStructField(value(explainedTargetCol), DataTypes.IntegerType, true),
                DataTypes.createStructField(value(deviceCol), DataTypes.StringType, true),
                DataTypes.createStructField(value(errorCol), DataTypes.StringType, true))) {
            if (Arrays.asList(out.fieldNames()).contains(f.name())) {
                throw new InvalidInputException("output column '" + f.name() + "' already exists in the input");
            }
            out = out.add(f);
        }
        return out;
    }

    @Override
    public Dataset<Row> transform(Dataset<?> dataset) {
        Dataset<Row> df = dataset.toDF();
        return df.mapPartitions(partitionFunction(df), encoder(df.schema()));
    }

    /** The encoder of the output rows: the input's columns and the five new ones. */
    public Encoder<Row> encoder(StructType inputSchema) {
        return Encoders.row(transformSchema(inputSchema));
    }

    /**
     * The function that explains a partition of {@code df} (for {@code df.mapPartitions}): reads the model
     * on the driver, checks it and the method, and broadcasts the model's bytes to the executors.
     */
    public MapPartitionsFunction<Row, Row> partitionFunction(Dataset<Row> df) {
        return partitionFunction(df, null);
    }

    /** {@link #partitionFunction(Dataset)} with fixed task resources (tests: a fake "gpu" address). */
    MapPartitionsFunction<Row, Row> partitionFunction(Dataset<Row> df, Map<String, ResourceInformation> resources) {
        StructType schema = df.schema();
        transformSchema(schema);
        if (!isDefined(modelPath)) {
            throw new InvalidInputException("setModelPath: no model given");
        }
        Methods.entry(value(method)); // an unknown method fails here, on the driver, naming the known ones
        if (value(batchSize) < 1) {
            throw new InvalidInputException("batchSize must be at least 1, got " + value(batchSize));
        }
        DeviceChoice.forTask(value(device), Map.of()); // an unknown device name fails here too
        SparkSession spark = df.sparkSession();
        String path = value(modelPath);
        byte[] bytes = read(spark, path);
        Graph g = OnnxImporter.parse(bytes, path);
        if (g.inputs().size() != 1 || g.inputs().get(0).integer()) {
            throw new InvalidInputException("kxai-spark explains models with one float input; " + path + " has "
                    + g.inputs().size() + " input(s)" + (g.inputs().size() == 1 ? " of integer ids" : ""));
        }
        Broadcast<byte[]> b = JavaSparkContext.fromSparkContext(spark.sparkContext()).broadcast(bytes);
        int ibs = value(internalBatchSize);
        ExplainSpec spec = new ExplainSpec(Methods.entry(value(method)).name(), value(steps), value(rule), value(baseline),
                ibs > 0 ? ibs : null, isDefined(layer) ? value(layer) : null, value(firstLayerSaving), value(abs), value(seed),
                List.of(getOrDefault(methodParams)), value(device), value(batchSize), value(batchInvariant),
                isDefined(preprocess) ? value(preprocess) : null);
        String in = value(inputCol);
        return new PartitionExplainer(b, sha256(bytes), path, spec, schema.fieldIndex(in),
                InputKind.of(in, schema.apply(in).dataType()), isDefined(targetCol) ? schema.fieldIndex(value(targetCol)) : -1,
                resources);
    }

    /** The model's bytes through Hadoop's file systems (file:, hdfs:, s3a: ... as the cluster has them). */
    private static byte[] read(SparkSession spark, String path) {
        try {
            Path p = new Path(path);
            FileSystem fs = p.getFileSystem(spark.sparkContext().hadoopConfiguration());
            try (InputStream s = fs.open(p)) {
                return s.readAllBytes();
            }
        } catch (IOException e) {
            throw new dev.kxai.ModelException("cannot read model " + path + ": " + e.getMessage(), e);
        }
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public KxaiExplainer copy(ParamMap extra) {
        return defaultCopy(extra);
    }
}
