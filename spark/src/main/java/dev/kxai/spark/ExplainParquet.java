package dev.kxai.spark;

import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code kxai spark}: explains a Parquet file with {@link KxaiExplainer} and writes Parquet; ready for
 * {@code spark-submit --class dev.kxai.spark.ExplainParquet kxai-spark-all.jar ...}, and run by
 * {@code ./kxai spark} on {@code local[*]}. With no {@code --input} it writes the bundled digits (the
 * input of {@code kxai explain} with no arguments) to {@code OUT/digits.parquet} and explains that, so
 * {@code ./kxai explain --batch-invariant && ./kxai spark --compare kxai-out} checks the two bit for bit.
 */
@Command(name = "kxai spark", mixinStandardHelpOptions = true, description = {
    "Explains the rows of a Parquet file on Spark and writes OUT/attributions.parquet (the input's columns plus",
    "attributions, delta, explained_target, device, error). Default: the bundled digits on local[*]."})
public final class ExplainParquet implements Callable<Integer> {
    private static final String EXAMPLE = "/dev/kxai/examples/digits_cnn/";

    @Option(names = "--input", paramLabel = "X.parquet", description = "Parquet with one example per row (default: "
            + "the bundled digits, written to OUT/digits.parquet).")
    String input;
    @Option(names = "--input-col", defaultValue = "input", description = "The examples' column (default: ${DEFAULT-VALUE}).")
    String inputCol;
    @Option(names = "--target-col", description = "An integer column of targets (default: the predicted class).")
    String targetCol;
    @Option(names = "--id-col", defaultValue = "id", description = "The rows' order for --compare (default: ${DEFAULT-VALUE}).")
    String idCol;
    @Option(names = "--model", paramLabel = "M.onnx", description = "ONNX model, local or Hadoop path (default: the bundled digits CNN).")
    String model;
    @Option(names = "--method", defaultValue = "ig", description = "kxai explain's --method (default: ${DEFAULT-VALUE}).")
    String method;
    @Option(names = "--steps", defaultValue = "50", description = "n_steps (default: ${DEFAULT-VALUE}).")
    int steps;
    @Option(names = "--rule", defaultValue = "gausslegendre", description = "Integration rule (default: ${DEFAULT-VALUE}).")
    String rule;
    @Option(names = "--baseline", defaultValue = "zeros", description = "zeros or a number (default: ${DEFAULT-VALUE}).")
    String baseline;
    @Option(names = "--param", paramLabel = "NAME=VALUE", description = "More Captum-named method parameters.")
    List<String> params = new ArrayList<>();
    @Option(names = "--batch-size", defaultValue = "64", description = "Rows per attribution call (default: ${DEFAULT-VALUE}).")
    int batchSize;
    @Option(names = "--no-batch-invariant", description = "Float BLAS for dense layers: a row's numbers then depend on "
            + "the rows batched with it (the partitioning), to float rounding.")
    boolean noBatchInvariant;
    @Option(names = "--device", defaultValue = "auto", description = "auto (the task's GPU, else CPU), cpu, cuda.")
    String device;
    @Option(names = "--master", description = "Spark master (default: spark-submit's, else local[*]).")
    String master;
    @Option(names = "--partitions", description = "Repartition the input into N partitions first.")
    Integer partitions;
    @Option(names = "--digits-repeat", defaultValue = "1", description = "Without --input: the ten digits K times "
            + "(also written as OUT/digits.npy, for kxai explain on the same rows).")
    int digitsRepeat;
    @Option(names = "--out", defaultValue = "kxai-spark-out", description = "Output folder (default: ./${DEFAULT-VALUE}).")
    Path out;
    @Option(names = "--compare", paramLabel = "DIR", description = "kxai explain's --out folder: check the attributions "
            + "and deltas against its attributions.npy and deltas.npy, bit for bit, in --id-col order (exit 1 if not).")
    Path compare;
    @Option(names = "--repeats", defaultValue = "1", description = "Run the job N times and print the median (timing).")
    int repeats;
    @Option(names = "--vs-explain", description = "Timing: also run kxai explain in this process on the same rows "
            + "(OUT/digits.npy) after each job, and print both medians.")
    boolean vsExplain;

    public static void main(String[] args) {
        System.exit(new CommandLine(new ExplainParquet()).execute(args));
    }

    @Override
    public Integer call() throws IOException {
        Files.createDirectories(out);
        // a session already running in this JVM (a test, a notebook) is used, and left running
        boolean own = SparkSession.getDefaultSession().isEmpty();
        SparkSession.Builder b = SparkSession.builder().appName("kxai spark");
        if (master != null || !new SparkConf().contains("spark.master")) {
            b.master(master != null ? master : "local[*]").config("spark.ui.enabled", "false");
        }
        SparkSession spark = b.getOrCreate();
        spark.sparkContext().setLogLevel("WARN");
        String modelPath = model != null ? model : bundled("model.onnx").toString();
        String inputPath = input != null ? input : writeDigits(spark).toString();
        KxaiExplainer ex = new KxaiExplainer().setModelPath(modelPath).setInputCol(inputCol).setMethod(method)
                .setSteps(steps).setRule(rule).setBaseline(baseline).setMethodParams(params.toArray(String[]::new))
                .setBatchSize(batchSize).setBatchInvariant(!noBatchInvariant).setDevice(device);
        if (targetCol != null) {
            ex.setTargetCol(targetCol);
        }
        String result = out.resolve("attributions.parquet").toString();
        List<Double> sparkSeconds = new ArrayList<>();
        List<Double> explainSeconds = new ArrayList<>();
        long rows = 0;
        for (int r = 0; r < repeats; r++) {
            long t0 = System.nanoTime();
            Dataset<Row> in = spark.read().parquet(inputPath);
            if (partitions != null) {
                in = in.repartition(partitions);
            }
            ex.transform(in).write().mode(SaveMode.Overwrite).parquet(result);
            sparkSeconds.add((System.nanoTime() - t0) / 1e9);
            if (vsExplain) {
                explainSeconds.add(explainInProcess(modelPath));
            }
        }
        Dataset<Row> written = spark.read().parquet(result);
        rows = written.count();
        long errors = written.filter(functions.col("error").isNotNull()).count();
        Map<String, Long> devices = new TreeMap<>();
        for (Row d : written.groupBy("device").count().collectAsList()) {
            devices.put(String.valueOf(d.get(0)), d.getLong(1));
        }
        double median = median(sparkSeconds);
        System.out.printf(Locale.ROOT, "kxai spark: %d rows (%d explained, %d errors) on %s, method %s, batch %d: %.2f s, "
                + "%.1f rows/s (median of %d: %s)%n", rows, rows - errors, errors, spark.sparkContext().master(), method,
                batchSize, median, rows / median, repeats, fmt(sparkSeconds));
        System.out.println("devices: " + devices);
        if (vsExplain) {
            double e = median(explainSeconds);
            System.out.printf(Locale.ROOT, "kxai explain in this process, same rows: %.2f s, %.1f rows/s (median of %d: %s)%n",
                    e, rows / e, repeats, fmt(explainSeconds));
        }
        System.out.println("wrote " + result);
        int status = 0;
        if (compare != null) {
            status = compare(written, compare) ? 0 : 1;
        }
        if (own) {
            spark.stop();
        }
        return status;
    }

    /** The bundled digits, K times, as OUT/digits.parquet (id, input array<float>) and OUT/digits.npy. */
    private Path writeDigits(SparkSession spark) throws IOException {
        Tensor x = NpyIO.read(bundled("input.npy"));
        int n = x.dim(0);
        int per = x.rowSize();
        float[] all = new float[n * digitsRepeat * per];
        List<Row> rows = new ArrayList<>();
        for (int k = 0; k < digitsRepeat; k++) {
            for (int i = 0; i < n; i++) {
                float[] row = Arrays.copyOfRange(x.data(), i * per, (i + 1) * per);
                System.arraycopy(row, 0, all, (k * n + i) * per, per);
                rows.add(RowFactory.create((long) (k * n + i), row));
            }
        }
        int[] shape = x.shape().clone();
        shape[0] = n * digitsRepeat;
        NpyIO.write(out.resolve("digits.npy"), new Tensor(shape, all));
        StructType schema = new StructType().add("id", DataTypes.LongType, false)
                .add(inputCol, DataTypes.createArrayType(DataTypes.FloatType, false), false);
        Path p = out.resolve("digits.parquet");
        spark.createDataFrame(rows, schema).write().mode(SaveMode.Overwrite).parquet(p.toString());
        return p;
    }

    /** kxai explain on OUT/digits.npy in this JVM; the seconds it reports (model, input, attributions). */
    private double explainInProcess(String modelPath) {
        StringWriter text = new StringWriter();
        List<String> args = new ArrayList<>(List.of("explain", "--model", modelPath, "--input",
                out.resolve("digits.npy").toString(), "--method", method, "--steps", Integer.toString(steps), "--rule", rule,
                "--out", out.resolve("explain-out").toString(), "--progress", "off"));
        if (!noBatchInvariant) {
            args.add("--batch-invariant");
        }
        int s = dev.kxai.cli.Main.run(args.toArray(String[]::new), new PrintWriter(text), new PrintWriter(System.err, true));
        Matcher m = Pattern.compile("ran on [^\\n]*, ([0-9.]+) s\\n").matcher(text.toString());
        if (s != 0 || !m.find()) {
            throw new IllegalStateException("kxai explain failed (" + s + "): " + text);
        }
        return Double.parseDouble(m.group(1));
    }

    /** The written rows in id order against kxai explain's attributions.npy and deltas.npy, bit for bit. */
    private boolean compare(Dataset<Row> written, Path dir) {
        Tensor a = NpyIO.read(dir.resolve("attributions.npy"));
        Path deltaFile = dir.resolve("deltas.npy");
        Tensor d = Files.exists(deltaFile) ? NpyIO.read(deltaFile) : null;
        List<Row> rows = written.orderBy(idCol).collectAsList();
        int per = a.rowSize();
        if (rows.size() != a.dim(0)) {
            System.out.printf("compare: %d rows written, %s holds %d: not the same rows%n", rows.size(), dir, a.dim(0));
            return false;
        }
        int equal = 0;
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            List<Object> at = r.getList(r.fieldIndex("attributions"));
            boolean same = at != null && at.size() == per;
            for (int j = 0; same && j < per; j++) {
                same = Float.floatToRawIntBits((Float) at.get(j)) == Float.floatToRawIntBits(a.data()[i * per + j]);
            }
            Object delta = r.get(r.fieldIndex("delta"));
            if (same && d != null) {
                same = delta != null && Float.floatToRawIntBits((Float) delta) == Float.floatToRawIntBits(d.data()[i]);
            }
            if (same) {
                equal++;
            } else if (at != null && at.size() == per) {
                double max = 0;
                for (int j = 0; j < per; j++) {
                    max = Math.max(max, Math.abs((Float) at.get(j) - a.data()[i * per + j]));
                }
                System.out.printf(Locale.ROOT, "compare: row %d (%s %s, target %s) differs from %s: max |difference| %.3g, "
                        + "delta %s vs %s%n", i, idCol, r.get(r.fieldIndex(idCol)), r.get(r.fieldIndex("explained_target")),
                        dir, max, delta, d == null ? "-" : Float.toString(d.data()[i]));
            } else {
                System.out.printf("compare: row %d (%s %s) was not explained: %s%n", i, idCol, r.get(r.fieldIndex(idCol)),
                        r.get(r.fieldIndex("error")));
            }
        }
        System.out.printf("compare: %d of %d rows bit for bit equal to %s/attributions.npy%s%n", equal, rows.size(), dir,
                d != null ? " and deltas.npy" : "");
        return equal == rows.size();
    }

    /** A bundled example file copied out of the core jar (the readers take files). */
    private Path bundled(String name) throws IOException {
        Path f = out.resolve("bundled-" + name);
        try (InputStream in = dev.kxai.Model.class.getResourceAsStream(EXAMPLE + name)) {
            if (in == null) {
                throw new IOException("bundled example " + name + " is missing from the kxai jar");
            }
            Files.copy(in, f, StandardCopyOption.REPLACE_EXISTING);
        }
        return f;
    }

    static double median(List<Double> v) {
        double[] s = v.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static String fmt(List<Double> v) {
        StringBuilder b = new StringBuilder();
        for (double x : v) {
            b.append(b.length() == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.2f", x));
        }
        return b.toString();
    }
}
