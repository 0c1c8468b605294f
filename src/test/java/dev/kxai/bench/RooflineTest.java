package dev.kxai.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.backend.cuda.KernelCosts;
import dev.kxai.backend.cuda.KernelCosts.Structure;
import dev.kxai.backend.cuda.KernelCosts.Totals;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The roofline model's arithmetic (no device: it is a model of one). */
class RooflineTest {
    private static final Roofline.Gpu H200 = Roofline.gpu("H200");

    @Test
    void theGpuTableIsFoundByLooseNames() {
        assertEquals("H200 SXM", H200.name());
        assertEquals("H100 SXM", Roofline.gpu("h100").name());
        assertEquals("A100 SXM 80GB", Roofline.gpu("A100").name());
        assertEquals("L4", Roofline.gpu("l4").name());
        assertEquals("RTX 4090", Roofline.gpu("rtx4090").name());
        assertEquals("RTX 4090", Roofline.gpu("4090").name());
        assertThrows(IllegalArgumentException.class, () -> Roofline.gpu("V100"));
        assertThrows(IllegalArgumentException.class, () -> Roofline.gpu(" "));
    }

    @Test
    void theDirectFp64KernelsAreBoundByConversionsOnHopperAndAmpereAndByTheUnfusedFmaOnAda() {
        // cvt64 / (2 · fp64) per SM-clock: 16 / 128 on 9.0, 16 / 64 on 8.0; Ada: min(1/2, 2 / 4)
        assertEquals(0.125, Roofline.computeFraction(Structure.FP64_DIRECT, H200));
        assertEquals(0.125, Roofline.computeFraction(Structure.FP64_DIRECT, Roofline.gpu("H100")));
        assertEquals(0.25, Roofline.computeFraction(Structure.FP64_DIRECT, Roofline.gpu("A100")));
        assertEquals(0.5, Roofline.computeFraction(Structure.FP64_DIRECT, Roofline.gpu("L4")));
        assertEquals(0.5, Roofline.computeFraction(Structure.FP64_DIRECT, Roofline.gpu("RTX 4090")));
    }

    @Test
    void aFamilyTakesTheLargestOfComputeMemoryAndLaunchTimes() {
        // 1 TFLOP of direct FP64 convolution on an H200: 1e12 / (34e12 · 1/8) s, FP64-bound at 12.5% of peak
        Roofline.Row conv = Roofline.predict(new Totals("conv2d_forward", Structure.FP64_DIRECT, 10, 1e12, 1e9), H200);
        assertEquals(1e12 / (34e12 * 0.125), conv.seconds(), 1e-12);
        assertEquals(Roofline.Bound.FP64, conv.bound());
        assertEquals(0.125, conv.fractionOfPeak(), 1e-12);
        // 48 GB of streaming: 48e9 / (4.8e12 · 0.8) = 12.5 ms, memory-bound at 80% of the bandwidth
        Roofline.Row copy = Roofline.predict(new Totals("scale_copy", Structure.STREAM, 100, 1e9, 48e9), H200);
        assertEquals(0.0125, copy.seconds(), 1e-12);
        assertEquals(Roofline.Bound.MEMORY, copy.bound());
        assertEquals(0.8, copy.fractionOfPeak(), 1e-12);
        // 1000 tiny launches: 2 ms of launch floor
        Roofline.Row tiny = Roofline.predict(new Totals("seed_one_hot", Structure.STREAM, 1000, 0, 1e3), H200);
        assertEquals(1000 * Roofline.LAUNCH_SECONDS, tiny.seconds(), 1e-15);
        assertEquals(Roofline.Bound.LAUNCH, tiny.bound());
        // a large SGEMM: compute-bound at 75% of FP32
        KernelCosts.Cost g = KernelCosts.gemm(false, 4096, 4096, 4096, 0f, 1, false, false);
        assertEquals(2.0 * 4096 * 4096 * 4096, g.flops());
        assertEquals(4.0 * 3 * 4096 * 4096, g.bytes());
        Roofline.Row sgemm = Roofline.predict(new Totals(KernelCosts.SGEMM, Structure.GEMM_FP32, 1, g.flops(),
                g.bytes()), H200);
        assertEquals(Roofline.Bound.FP32, sgemm.bound());
        assertEquals(g.flops() / (67e12 * 0.75), sgemm.seconds(), 1e-12);
    }

    @Test
    void theSummaryAddsFamiliesAndComparesWithTheFp32AndTf32Limits() {
        List<Totals> run = List.of(new Totals("conv2d_forward", Structure.FP64_DIRECT, 10, 1e12, 1e9),
                new Totals("scale_copy", Structure.STREAM, 100, 1e9, 48e9));
        Roofline.Summary s = Roofline.summary(run, H200);
        assertEquals(1e12 / (34e12 * 0.125) + 0.0125, s.seconds(), 1e-12);
        assertEquals(1.001e12 / 67e12, s.fp32LimitSeconds(), 1e-15);
        assertEquals(1.001e12 / 494.5e12, s.tf32LimitSeconds(), 1e-15);
        String report = Roofline.report(run, H200);
        assertTrue(report.startsWith("cost model: a MODEL"), report);
        // most predicted time first
        assertTrue(report.indexOf("conv2d_forward") < report.indexOf("scale_copy"), report);
        assertTrue(report.contains("fp64 direct, 1 thread/output"), report);
        assertEquals(5, report.lines().filter(l -> l.matches("(H100|H200|A100|L4|RTX).*%")).count(), report);
    }

    @Test
    void launchArgumentsGiveTheKernelsCosts() {
        // path_interpolate(out, x, base, alphas, steps 5, batch 2, features 10): x and base read, 5 planes written
        KernelCosts.Cost p = KernelCosts.of("path_interpolate", null, null, null, null, 5, 2, 10L);
        assertEquals(20 * (1 + 2 * 5), p.flops());
        assertEquals(4.0 * 20 * (2 + 5), p.bytes());
        // maxpool_forward(y, argmax, x, planes 6, h 8, wd 8, kh 2, kw 2, sh 2, sw 2, 0, 0, 1, 1, oh 4, ow 4)
        KernelCosts.Cost m = KernelCosts.of("maxpool_forward", null, null, null, 6L, 8, 8, 2, 2, 2, 2, 0, 0, 1, 1, 4, 4);
        assertEquals(6 * 16 * 4, m.flops());
        assertEquals(4.0 * (6 * 64 + 2 * 6 * 16), m.bytes());
        // a batched GEMM whose A is shared (stride 0) reads A once
        KernelCosts.Cost b = KernelCosts.gemm(false, 27, 64, 4, 0f, 2, true, false);
        assertEquals(4.0 * (27 * 4 + 2 * 4 * 64 + 2 * 27 * 64), b.bytes());
        assertEquals(8.0 * (2 * 2 + 2 * 2 + 2 * 2 * 2), KernelCosts.gemm(true, 2, 2, 2, 1f, 1, false, false).bytes(),
                "dgemm: doubles, C read and written when beta != 0");
    }
}
