/**
 * The CUDA backend: the kernels of {@code kernels/*.cu} (PTX packed in the jar) launched through
 * JCuda, GEMM through cuBLAS. {@link dev.kxai.backend.cuda.Launch} is the one caller of
 * cuLaunchKernel; {@link dev.kxai.backend.cuda.Kernels} holds a typed launcher per kernel.
 * Tested on the CPU emulation of the driver built by native-tests/.
 */
package dev.kxai.backend.cuda;
