package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.conv;
import static dev.kxai.backend.cuda.CudaTestKit.cuda;
import static dev.kxai.backend.cuda.CudaTestKit.rand;
import static dev.kxai.backend.cuda.CudaTestKit.s;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.cuda.CudaTestKit.G;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import dev.kxai.backend.cuda.KernelCosts.Structure;
import dev.kxai.backend.cuda.KernelCosts.Totals;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The cost model's counts (KernelCosts) on the emulator: a Conv and a Gemm of known geometry run
 * on the CUDA backend count exactly the hand-computed FLOPs and bytes per kernel family, and
 * {@code kxai bench --device cuda} prints the roofline table. Counts, not speed: nothing here
 * times a kernel.
 */
class KernelCostsTest {
    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    /** Conv x[2, 3, 8, 8] * w[4, 3, 3, 3] + bias[4], stride 1, pads 1: y[2, 4, 8, 8]. */
    private static G convChain() {
        Random r = new Random(5);
        G g = new G(3, 8, 8);
        g.then(conv(s(3, 3), s(1, 1), s(1, 1, 1, 1), s(1, 1), 1, "NOTSET"), rand(r, -0.5, 0.5, 4, 3, 3, 3),
                rand(r, -0.1, 0.1, 4));
        return g;
    }

    private static Graph convGraph() {
        return convChain().build();
    }

    private static Totals family(Map<String, Totals> counts, String f) {
        Totals t = counts.get(f);
        assertNotNull(t, "no count for " + f + " in " + counts.keySet());
        return t;
    }

    /** The double kernel's counts (the exact path: {@link CudaBackend#exactPath}). */
    @Test
    void convForwardCountsTheHandComputedFlopsAndBytes() {
        boolean was = CudaBackend.exactPath(true);
        try {
            exactConvForwardCounts();
        } finally {
            CudaBackend.exactPath(was);
        }
    }

    /** The FP32 path: the implicit GEMM and the two small kernels of its bound. */
    @Test
    void floatConvForwardCountsTheHandComputedFlopsAndBytes() {
        Tensor x = rand(new Random(6), -1, 1, 2, 3, 8, 8);
        try (ModelRunner gpu = cuda().prepare(convGraph())) {
            KernelCosts.reset();
            gpu.forward(x);
            Map<String, Totals> c = KernelCosts.snapshot();
            // 4 output channels: the 16x256-tile kernel
            assertEquals(List.of("conv2d_forward_f32_narrow", "conv_plane_bound", "plane_max_abs"),
                    new ArrayList<>(c.keySet()));
            Totals t = family(c, "conv2d_forward_f32_narrow");
            assertEquals(Structure.FP32_TILED, t.structure());
            assertEquals(2.0 * 13824 + 512, t.flops(), "the same FLOPs as the double kernel");
            // x, w, bias, y as the double kernel (floats), + the bound per (image, output channel) read: 2·4
            assertEquals(4.0 * (384 + 108 + 4 + 512) + 4.0 * 8, t.bytes());
            // max |x| over 6 planes of 64; bounds: 2·4 outputs, 3 channels each, a multiply-add per channel
            assertEquals(6.0 * 64, family(c, "plane_max_abs").flops());
            assertEquals(4.0 * 6 * 65, family(c, "plane_max_abs").bytes());
            assertEquals(2.0 * 2 * 4 * 3, family(c, "conv_plane_bound").flops());
            assertEquals(4.0 * (8 + 6 + 12 + 4), family(c, "conv_plane_bound").bytes());
        }
    }

    private void exactConvForwardCounts() {
        Tensor x = rand(new Random(6), -1, 1, 2, 3, 8, 8);
        try (ModelRunner gpu = cuda().prepare(convGraph())) {
            KernelCosts.reset();
            gpu.forward(x);
            Map<String, Totals> c = KernelCosts.snapshot();
            assertEquals(List.of("conv2d_forward"), new ArrayList<>(c.keySet()), "the forward is one launch");
            Totals t = family(c, "conv2d_forward");
            assertEquals(1, t.launches());
            assertEquals(Structure.FP64_DIRECT, t.structure());
            // MACs = N·M·OH·OW·C·kh·kw = 2·4·8·8·3·3·3 = 13824; 2 FLOPs each + one bias add per output (512)
            assertEquals(2.0 * 13824 + 512, t.flops());
            // x 2·3·8·8 = 384, w 4·3·3·3 = 108, bias 4, y 2·4·8·8 = 512 floats: 1008 · 4 bytes
            assertEquals(4.0 * (384 + 108 + 4 + 512), t.bytes());

            gpu.forward(x);
            Totals twice = family(KernelCosts.snapshot(), "conv2d_forward");
            assertEquals(2, twice.launches(), "the counter adds launches up");
            assertEquals(2 * t.flops(), twice.flops());
            KernelCosts.reset();
            assertTrue(KernelCosts.snapshot().isEmpty(), "reset forgets every family");
        }
    }

    @Test
    void gemmCountsAsCublasSgemmAndTheBiasAsItsOwnFamily() {
        Random r = new Random(7);
        G g = new G(5);
        g.then(new Op.Gemm(1f, 1f, false, false), rand(r, -0.5, 0.5, 5, 4), rand(r, -0.1, 0.1, 4));
        Tensor x = rand(r, -1, 1, 3, 5);
        try (ModelRunner gpu = cuda().prepare(g.build())) {
            KernelCosts.reset();
            gpu.forward(x);
            Map<String, Totals> c = KernelCosts.snapshot();
            Totals gemm = family(c, KernelCosts.SGEMM);
            assertEquals(1, gemm.launches());
            assertEquals(Structure.GEMM_FP32, gemm.structure());
            // [3×5]·[5×4]: 2·3·4·5 FLOPs; A 15, B 20 read, C 12 written (beta 0: the row bias is added after)
            assertEquals(2.0 * 3 * 4 * 5, gemm.flops());
            assertEquals(4.0 * (15 + 20 + 12), gemm.bytes());
            Totals bias = family(c, "bias_act_forward");
            assertEquals(1, bias.launches());
            assertEquals(12.0, bias.flops(), "one add per output, no activation");
            assertEquals(4.0 * (2 * 12 + 4), bias.bytes(), "y read and written in place, the bias read");
            assertEquals(2, c.size(), c.keySet().toString());
        }
    }

    @Test
    void convInputGradientCountsPerFamily() {
        float[] head = new float[4 * 8 * 8];
        java.util.Arrays.fill(head, 0.25f);
        Graph g = convChain().withHead(head);
        Tensor x = rand(new Random(8), -1, 1, 2, 3, 8, 8);
        boolean was = CudaBackend.exactPath(true);
        try (ModelRunner gpu = cuda().prepare(g)) {
            KernelCosts.reset();
            gpu.gradient(x, new int[] {0, 0});
            Map<String, Totals> c = KernelCosts.snapshot();
            assertEquals(1, family(c, "conv2d_forward").launches());
            // dcols = Wᵀ·dY per image: m = C·kh·kw = 27, n = OH·OW = 64, k = M = 4, 2 images; W (stride 0) read once
            // + the head's forward [2×256]·[256×1] and its input gradient [2×1]·[1×256]
            Totals gemm = family(c, KernelCosts.SGEMM);
            assertEquals(3, gemm.launches(), "head forward, head input gradient, conv input gradient");
            assertEquals(2.0 * 27 * 64 * 4 * 2 + 2.0 * 2 * 1 * 256 + 2.0 * 2 * 256 * 1, gemm.flops());
            assertEquals(4.0 * (27 * 4 + 2 * 4 * 64 + 2 * 27 * 64) + 4.0 * (2 * 256 + 256 + 2)
                    + 4.0 * (2 + 256 + 2 * 256), gemm.bytes());
            // col2im: one add per column element (2·27·64), dcols read, dx 2·3·8·8 written
            Totals col = family(c, "im2col_input_grad");
            assertEquals(1, col.launches());
            assertEquals(2.0 * 27 * 64, col.flops());
            assertEquals(4.0 * (2 * 27 * 64 + 2 * 3 * 64), col.bytes());
            for (Totals t : c.values()) {
                assertTrue(t.structure() != Structure.UNKNOWN, t.family() + " has no cost model");
            }
        } finally {
            CudaBackend.exactPath(was);
        }
    }

    @Test
    void everyKernelOfThePtxHasACostModel() throws IOException {
        List<String> missing = new ArrayList<>();
        int kernels = 0;
        for (String m : CudaRuntime.MODULES) {
            try (InputStream in = KernelCosts.class.getResourceAsStream("/dev/kxai/kernels/" + m + ".ptx")) {
                assertNotNull(in, "no PTX for " + m);
                for (String k : KernelNames.in(in.readAllBytes())) {
                    kernels++;
                    if (!KernelCosts.modelled(k)) {
                        missing.add(m + ".cu: " + k);
                    }
                }
            }
        }
        assertTrue(kernels > 40, "read " + kernels + " kernels");
        assertTrue(missing.isEmpty(), "kernels without a cost model in KernelCosts: " + missing);
        assertFalse(KernelCosts.modelled("no_such_kernel"));
        assertEquals(Structure.UNKNOWN, KernelCosts.structure("no_such_kernel"));
    }

    @Test
    void benchOnCudaPrintsTheRooflineTable() {
        Path mlp = TestData.reference("mlp_tabular");
        CliRun r = CliRun.of("bench", "--model", mlp.resolve("model.onnx").toString(), "--input",
                mlp.resolve("input.npy").toString(), "--device", "cuda", "--steps", "2", "--repeats", "1", "--warmup",
                "1", "--sgemm-size", "16", "--sgemm-seconds", "0.01", "--gpu", "A100");
        assertEquals(0, r.status(), r.out() + r.err());
        String out = r.out();
        assertTrue(out.contains("cost model: a MODEL from the launches' arguments and datasheet peaks, not a measurement;"
                + " per timed run, on A100 SXM 80GB"), out);
        // the MLP's matrix work is its Gemms: cuBLAS's FLOPs per run equal the bench's own FLOP count
        Matcher work = Pattern.compile("= ([0-9.]+) GFLOP per run").matcher(out);
        assertTrue(work.find(), out);
        Matcher sgemm = Pattern.compile("(?m)^cublasSgemm +([0-9]+) +([0-9.]+) +([0-9.]+) +cuBLAS sgemm").matcher(out);
        assertTrue(sgemm.find(), out);
        assertEquals(Double.parseDouble(work.group(1)), Double.parseDouble(sgemm.group(2)), 1e-4, out);
        assertTrue(out.lines().anyMatch(l -> l.matches("total +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+")), out);
        for (String gpu : new String[] {"H100 SXM", "H200 SXM", "A100 SXM 80GB", "L4", "RTX 4090"}) {
            assertTrue(out.lines().anyMatch(l -> l.startsWith(gpu + " ") && l.matches(".* [0-9.]+% +[0-9.]+%")),
                    gpu + ":\n" + out);
        }

        CliRun bad = CliRun.of("bench", "--model", mlp.resolve("model.onnx").toString(), "--input",
                mlp.resolve("input.npy").toString(), "--device", "cuda", "--gpu", "V100");
        assertEquals(2, bad.status(), bad.out() + bad.err());
        assertTrue(bad.err().contains("no GPU named 'V100'"), bad.err());
    }
}
