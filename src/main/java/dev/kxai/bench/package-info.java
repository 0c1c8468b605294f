/**
 * Benchmark measuring code behind {@code kxai bench}: the multiply-add count of an attribution
 * run read from the model graph ({@link dev.kxai.bench.FlopCounter}), the machine's sgemm rate
 * through the BLAS the engine uses ({@link dev.kxai.bench.SgemmRate}), and timing statistics
 * ({@link dev.kxai.bench.Timings}). See {@code bench/README.md} for the formulas.
 */
package dev.kxai.bench;
