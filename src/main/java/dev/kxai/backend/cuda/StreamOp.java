package dev.kxai.backend.cuda;

import java.util.Arrays;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;

/**
 * One stream-ordered device operation of a piece of work, as {@link ChunkGraphs}' validated replay
 * sees it: {@link #same} compares everything a captured graph bakes in (function, geometry, argument
 * values, device and pinned host addresses, sizes, scalars), and {@link #issue} performs it eagerly
 * (while capturing, the driver records it instead). Per-chunk host data is not compared: it reaches
 * the device through a pinned staging slice at a fixed address, whose captured memcpy node copies
 * whatever the slice holds when the graph runs.
 */
sealed interface StreamOp {
    boolean same(StreamOp o);

    void issue(CUstream stream);

    /** A kernel launch (1-D grid); {@code signature} holds each argument's kind and bits. */
    record Kernel(CUfunction f, int grid, int block, int shared, long[] signature, Pointer params) implements StreamOp {
        @Override
        public boolean same(StreamOp o) {
            return o instanceof Kernel k && k.f == f && k.grid == grid && k.block == block && k.shared == shared
                    && Arrays.equals(k.signature, signature);
        }

        @Override
        public void issue(CUstream stream) {
            JCudaDriver.cuLaunchKernel(f, grid, 1, 1, block, 1, 1, shared, stream, params, null);
        }
    }

    /** cuMemcpyHtoDAsync from a pinned staging slice. */
    record Upload(CUdeviceptr dst, long dstAddress, Pointer src, long srcAddress, long bytes) implements StreamOp {
        @Override
        public boolean same(StreamOp o) {
            return o instanceof Upload u && u.dstAddress == dstAddress && u.srcAddress == srcAddress && u.bytes == bytes;
        }

        @Override
        public void issue(CUstream stream) {
            JCudaDriver.cuMemcpyHtoDAsync(dst, src, bytes, stream);
        }
    }

    /** cuMemcpyDtoDAsync. */
    record Copy(CUdeviceptr dst, long dstAddress, CUdeviceptr src, long srcAddress, long bytes) implements StreamOp {
        @Override
        public boolean same(StreamOp o) {
            return o instanceof Copy c && c.dstAddress == dstAddress && c.srcAddress == srcAddress && c.bytes == bytes;
        }

        @Override
        public void issue(CUstream stream) {
            JCudaDriver.cuMemcpyDtoDAsync(dst, src, bytes, stream);
        }
    }

    /** cuMemsetD32Async. */
    record Fill(CUdeviceptr dst, long dstAddress, int value, long words) implements StreamOp {
        @Override
        public boolean same(StreamOp o) {
            return o instanceof Fill f && f.dstAddress == dstAddress && f.value == value && f.words == words;
        }

        @Override
        public void issue(CUstream stream) {
            JCudaDriver.cuMemsetD32Async(dst, value, words, stream);
        }
    }

    /**
     * A cuBLAS SGEMM (count 1, strides 0) or strided-batched SGEMM on the lane's handle (bound to the
     * stream: issue ignores its argument). {@code shape}: transposes, m, n, k, leading dimensions,
     * strides, count, the scalars' bits and the matrices' addresses.
     */
    record Gemm(cublasHandle handle, long[] shape, Pointer a, Pointer b, Pointer c, boolean batched) implements StreamOp {
        @Override
        public boolean same(StreamOp o) {
            return o instanceof Gemm g && g.handle == handle && g.batched == batched && Arrays.equals(g.shape, shape);
        }

        @Override
        public void issue(CUstream stream) {
            int opB = (int) shape[0];
            int opA = (int) shape[1];
            Pointer alpha = Pointer.to(new float[] {Float.intBitsToFloat((int) shape[9])});
            Pointer beta = Pointer.to(new float[] {Float.intBitsToFloat((int) shape[10])});
            if (batched) {
                JCublas2.cublasSgemmStridedBatched(handle, opB, opA, (int) shape[2], (int) shape[3], (int) shape[4], alpha,
                        b, (int) shape[5], shape[11], a, (int) shape[6], shape[12], beta, c, (int) shape[7], shape[13],
                        (int) shape[8]);
            } else {
                JCublas2.cublasSgemm(handle, opB, opA, (int) shape[2], (int) shape[3], (int) shape[4], alpha, b,
                        (int) shape[5], a, (int) shape[6], beta, c, (int) shape[7]);
            }
        }
    }
}
