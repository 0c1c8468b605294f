/**
 * The CPU backend: every operator's forward and backward in Java, GEMM through netlib BLAS
 * (system OpenBLAS when installed), convolution as im2col + GEMM, images spread over the cores.
 * These are also the CPU twins the CUDA kernels are checked against.
 */
package dev.kxai.backend.cpu;
