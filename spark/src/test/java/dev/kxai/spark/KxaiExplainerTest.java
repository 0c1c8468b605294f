package dev.kxai.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.backend.Backends;
import dev.kxai.backend.cpu.Blas;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * kxai-spark on local[2] against {@code kxai explain} (run in this JVM through the CLI's entry point,
 * with --batch-invariant as the Spark side's default): the bundled digits, split into partitions and
 * batches unlike the CLI's single batch of ten, must come back bit for bit, attributions and deltas.
 */
class KxaiExplainerTest {
    private static final String EXAMPLE = "/dev/kxai/examples/digits_cnn/";
    private static SparkSession spark;
    private static Path dir;
    private static Path model;
    private static Path reference;
    private static Tensor digits;
    private static Tensor attributions;
    private static Tensor deltas;
    private static int[] predicted;

    @BeforeAll
    static void startSparkAndRunKxaiExplain(@TempDir Path tmp) throws Exception {
        dir = tmp;
        model = copy("model.onnx");
        digits = NpyIO.read(copy("input.npy"));
        reference = dir.resolve("kxai-out");
        StringWriter out = new StringWriter();
        int status = dev.kxai.cli.Main.run(new String[] {"explain", "--batch-invariant", "--out", reference.toString(),
            "--progress", "off"}, new PrintWriter(out), new PrintWriter(System.err, true));
        assertEquals(0, status, out.toString());
        attributions = NpyIO.read(reference.resolve("attributions.npy"));
        deltas = NpyIO.read(reference.resolve("deltas.npy"));
        predicted = new int[digits.dim(0)];
        Matcher m = Pattern.compile("example (\\d+): predicted (\\d+)").matcher(out.toString());
        int found = 0;
        while (m.find()) {
            predicted[Integer.parseInt(m.group(1))] = Integer.parseInt(m.group(2));
            found++;
        }
        assertEquals(digits.dim(0), found, out.toString());
        spark = SparkSession.builder().master("local[2]").appName("kxai-spark test").config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.sql.shuffle.partitions", "2").getOrCreate();
    }

    @AfterAll
    static void stopSpark() {
        if (spark != null) {
            spark.stop();
        }
    }

    private static Path copy(String name) throws Exception {
        Path f = dir.resolve(name);
        try (InputStream in = dev.kxai.Model.class.getResourceAsStream(EXAMPLE + name)) {
            Files.copy(in, f, StandardCopyOption.REPLACE_EXISTING);
        }
        return f;
    }

    private static float[] digit(int i) {
        int per = digits.rowSize();
        return Arrays.copyOfRange(digits.data(), i * per, (i + 1) * per);
    }

    /** The ten digits as (id, input array<float>) in {@code partitions} partitions. */
    private static Dataset<Row> digitsFrame(int partitions) {
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < digits.dim(0); i++) {
            rows.add(RowFactory.create((long) i, digit(i)));
        }
        StructType schema = new StructType().add("id", DataTypes.LongType, false)
                .add("input", DataTypes.createArrayType(DataTypes.FloatType, false), false);
        return spark.createDataFrame(JavaSparkContext.fromSparkContext(spark.sparkContext()).parallelize(rows, partitions),
                schema);
    }

    private static KxaiExplainer explainer() {
        return new KxaiExplainer().setModelPath(model.toString()).setDevice("cpu");
    }

    private static Map<Long, Row> byId(Dataset<Row> out) {
        Map<Long, Row> m = new HashMap<>();
        for (Row r : out.collectAsList()) {
            m.put(r.getLong(r.fieldIndex("id")), r);
        }
        return m;
    }

    /** Row {@code r} explained exactly as kxai explain explained digit {@code i}. */
    private static void assertSameAsKxaiExplain(int i, Row r) {
        assertNull(r.get(r.fieldIndex("error")), "digit " + i);
        List<Object> a = r.getList(r.fieldIndex("attributions"));
        int per = attributions.rowSize();
        assertEquals(per, a.size(), "digit " + i);
        for (int j = 0; j < per; j++) {
            assertEquals(Float.floatToRawIntBits(attributions.data()[i * per + j]), Float.floatToRawIntBits((Float) a.get(j)),
                    "digit " + i + ", attribution " + j + ": " + a.get(j) + " vs kxai explain's " + attributions.data()[i * per + j]);
        }
        assertEquals(Float.floatToRawIntBits(deltas.data()[i]), Float.floatToRawIntBits(r.getFloat(r.fieldIndex("delta"))),
                "digit " + i + " delta");
        assertEquals(predicted[i], r.getInt(r.fieldIndex("explained_target")), "digit " + i);
    }

    @Test
    void threePartitionsInBatchesOfThreeOnLocal2EqualKxaiExplainBitForBit() {
        int before = ModelCache.LOADS.get();
        for (int run = 0; run < 2; run++) {
            Dataset<Row> out = explainer().setBatchSize(3).transform(digitsFrame(3));
            assertEquals(3, out.rdd().getNumPartitions());
            Map<Long, Row> rows = byId(out);
            assertEquals(10, rows.size());
            for (int i = 0; i < 10; i++) {
                assertSameAsKxaiExplain(i, rows.get((long) i));
                assertEquals("cpu", rows.get((long) i).getString(rows.get((long) i).fieldIndex("device")));
            }
        }
        // six tasks over two jobs, one model: loaded once by this JVM (the only executor of local mode), or
        // not at all where an earlier test of this class loaded it already
        assertTrue(ModelCache.LOADS.get() - before <= 1, "loads: " + (ModelCache.LOADS.get() - before));
        assertTrue(ModelCache.LOADS.get() >= 1);
        assertEquals("local[2]", spark.sparkContext().master());
        assertFalse(Blas.batchInvariant(), "the tasks released the batch-invariant mode");
    }

    @Test
    void binaryNpyRowsGiveTheSameBits() throws Exception {
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            Path f = dir.resolve("row" + i + ".npy");
            // one example with its batch axis of 1, as x[i:i+1] saved by NumPy
            NpyIO.write(f, new Tensor(new int[] {1, 1, 8, 8}, digit(i)));
            rows.add(RowFactory.create((long) i, Files.readAllBytes(f)));
        }
        StructType schema = new StructType().add("id", DataTypes.LongType).add("npy", DataTypes.BinaryType);
        Dataset<Row> df = spark.createDataFrame(rows, schema).repartition(2);
        Map<Long, Row> out = byId(explainer().setInputCol("npy").transform(df));
        for (int i = 0; i < 10; i++) {
            assertSameAsKxaiExplain(i, out.get((long) i));
        }
    }

    @Test
    void badRowsOfAPartitionBecomeErrorRowsAndTheOthersAreExplained() {
        float[] nan = digit(1);
        nan[5] = Float.NaN;
        List<Row> rows = List.of(
                RowFactory.create(0L, digit(0), null),
                RowFactory.create(101L, Arrays.copyOf(digit(2), 63), null),
                RowFactory.create(102L, nan, null),
                RowFactory.create(103L, null, null),
                RowFactory.create(104L, digit(3), 12),
                RowFactory.create(105L, new float[] {1f, Float.POSITIVE_INFINITY}, null),
                RowFactory.create(4L, digit(4), null),
                RowFactory.create(106L, digit(6), 3));
        StructType schema = new StructType().add("id", DataTypes.LongType)
                .add("input", DataTypes.createArrayType(DataTypes.FloatType, false), true)
                .add("target", DataTypes.IntegerType, true);
        Dataset<Row> df = spark.createDataFrame(JavaSparkContext.fromSparkContext(spark.sparkContext()).parallelize(rows, 1),
                schema);
        Map<Long, Row> out = byId(explainer().setTargetCol("target").setBatchSize(8).transform(df));
        assertEquals(8, out.size());
        assertSameAsKxaiExplain(0, out.get(0L));
        assertSameAsKxaiExplain(4, out.get(4L));
        Map<Long, String> expected = Map.of(101L, "the input has 63 values; the model's example [1, 8, 8] takes 64",
                102L, "the input holds a non-finite value NaN at flat index 5", 103L, "the input is null",
                104L, "target 12 is outside the model's 10 outputs (valid: 0..9)",
                105L, "the input has 2 values; the model's example [1, 8, 8] takes 64");
        for (Map.Entry<Long, String> e : expected.entrySet()) {
            Row r = out.get(e.getKey());
            assertEquals(e.getValue(), r.getString(r.fieldIndex("error")), "row " + e.getKey());
            for (String c : List.of("attributions", "delta", "explained_target", "device")) {
                assertTrue(r.isNullAt(r.fieldIndex(c)), "row " + e.getKey() + ": " + c + " is not null");
            }
        }
        Row given = out.get(106L);
        assertNull(given.get(given.fieldIndex("error")));
        assertEquals(3, given.getInt(given.fieldIndex("explained_target")), "the target column's value is explained");
        assertNotNull(given.get(given.fieldIndex("attributions")));
        assertEquals(104L, out.get(104L).getLong(0), "the input's columns are kept");
    }

    /**
     * The task's GPU address (a fake "gpu" resource: no GPU here) goes into the backend choice: auto then
     * asks for CUDA on that ordinal and, where CUDA is unavailable, falls back to the CPU and says so in the
     * device column, with the same bits. On a machine with CUDA it would run there: not checked here.
     */
    @Test
    void aGpuAddressAssignedToTheTaskReachesTheBackendChoice() {
        Dataset<Row> df = digitsFrame(2);
        KxaiExplainer ex = explainer().setDevice("auto");
        Map<String, ResourceInformation> gpu0 = Map.of("gpu", new ResourceInformation("gpu", new String[] {"0"}));
        Map<Long, Row> out = byId(df.mapPartitions(ex.partitionFunction(df, gpu0), ex.encoder(df.schema())));
        boolean cuda = Backends.probes().stream().anyMatch(p -> p.provider().name().equals("cuda")
                && p.availability().available());
        for (int i = 0; i < 10; i++) {
            Row r = out.get((long) i);
            String device = r.getString(r.fieldIndex("device"));
            if (cuda) {
                assertTrue(device.startsWith("cuda (gpu 0)"), device);
            } else {
                assertTrue(device.startsWith("cpu (the task's gpu 0 not used: cuda unavailable, "), device);
                assertSameAsKxaiExplain(i, r);
            }
        }
    }

    @Test
    void deviceChoiceFollowsTheTasksResources() {
        Map<String, ResourceInformation> two = Map.of("gpu", new ResourceInformation("gpu", new String[] {"2", "3"}));
        assertEquals(new DeviceChoice("auto", 2, "task's gpu 2"), DeviceChoice.forTask("auto", two));
        assertEquals(new DeviceChoice("cuda", 2, "task's gpu 2"), DeviceChoice.forTask("CUDA", two));
        assertEquals("cpu", DeviceChoice.forTask("cpu", two).backend());
        assertEquals(new DeviceChoice("cpu", null, "no GPU assigned to the task"), DeviceChoice.forTask(null, Map.of()));
        assertEquals(new DeviceChoice("cuda", null, "cuda asked for, no GPU assigned to the task"),
                DeviceChoice.forTask("cuda", Map.of()));
        InvalidInputException uuid = assertThrows(InvalidInputException.class, () -> DeviceChoice.forTask("auto",
                Map.of("gpu", new ResourceInformation("gpu", new String[] {"GPU-5fa1"}))));
        assertTrue(uuid.getMessage().contains("'GPU-5fa1'"), uuid.getMessage());
        assertThrows(InvalidInputException.class, () -> DeviceChoice.forTask("tpu", Map.of()));
    }

    @Test
    void mistakesAreRefusedOnTheDriverBeforeAnyTask() {
        Dataset<Row> df = digitsFrame(1);
        InvalidInputException method = assertThrows(InvalidInputException.class,
                () -> explainer().setMethod("integrated_gradient").transform(df));
        assertTrue(method.getMessage().contains("integrated_gradient"), method.getMessage());
        InvalidInputException column = assertThrows(InvalidInputException.class,
                () -> explainer().setInputCol("pixels").transform(df));
        assertTrue(column.getMessage().contains("no input column 'pixels'"), column.getMessage());
        InvalidInputException type = assertThrows(InvalidInputException.class,
                () -> explainer().setInputCol("id").transform(df));
        assertTrue(type.getMessage().contains("input column 'id' is bigint"), type.getMessage());
        assertThrows(InvalidInputException.class, () -> new KxaiExplainer().transform(df));
    }

    /** The example command: the bundled digits to Parquet, explained, written as Parquet, compared with kxai explain. */
    @Test
    void theExampleCommandWritesParquetEqualToKxaiExplain() throws Exception {
        Path out = dir.resolve("spark-out");
        StringWriter text = new StringWriter();
        java.io.PrintStream was = System.out;
        java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
        int status;
        System.setOut(new java.io.PrintStream(buf, true));
        try {
            status = new CommandLine(new ExplainParquet()).execute("--out", out.toString(), "--compare",
                    reference.toString(), "--partitions", "3", "--batch-size", "4");
        } finally {
            System.setOut(was);
        }
        String printed = buf.toString();
        System.out.print(printed);
        assertEquals(0, status, printed);
        assertTrue(printed.contains("compare: 10 of 10 rows bit for bit equal to"), printed);
        assertTrue(printed.contains("kxai spark: 10 rows (10 explained, 0 errors) on local[2]"), printed);
        assertTrue(Files.isDirectory(out.resolve("attributions.parquet")));
        assertTrue(Files.isDirectory(out.resolve("digits.parquet")));
        assertFalse(spark.sparkContext().isStopped(), "the example leaves a session it did not start running");
    }
}
