package dev.kxai.backend.cuda;

import jcuda.driver.CUdevice;
import jcuda.driver.JCudaDriver;

/**
 * The fake driver's counters (native-tests/fake-cuda/emu_memory.h), read from the JVM through the
 * emulator-only device attributes {@code KXAI_EMU_COUNTER_ATTRIBUTE + index} (JCuda reaches no other
 * export of libcuda.so.1). Only meaningful on the emulator: a real driver refuses these attributes.
 */
final class EmuCounters {
    private EmuCounters() {
    }

    /** {@code KXAI_EMU_COUNTER_ATTRIBUTE}: 'KX' << 16. */
    private static final int BASE = 0x4B580000;
    /** In the driver's order. */
    static final String[] NAMES = {"launches_default_stream", "launches_created_stream", "ops_default_stream",
        "ops_created_stream", "async_copies_pageable", "async_copies_pinned", "sync_host_copies", "pinned_allocations",
        "pinned_frees", "cublas_default_stream", "cublas_created_stream", "graph_captures", "graph_launches",
        "captured_nodes"};

    static final int LAUNCHES_DEFAULT = 0;
    static final int LAUNCHES_CREATED = 1;
    static final int OPS_DEFAULT = 2;
    static final int OPS_CREATED = 3;
    static final int ASYNC_PAGEABLE = 4;
    static final int ASYNC_PINNED = 5;
    static final int SYNC_HOST_COPIES = 6;
    static final int CUBLAS_DEFAULT = 9;
    static final int CUBLAS_CREATED = 10;
    static final int GRAPH_CAPTURES = 11;
    static final int GRAPH_LAUNCHES = 12;
    static final int CAPTURED_NODES = 13;

    /** Every counter now (low 31 bits, as the driver reports them). */
    static long[] read() {
        CUdevice dev = new CUdevice();
        JCudaDriver.cuDeviceGet(dev, 0);
        long[] out = new long[NAMES.length];
        int[] v = new int[1];
        for (int i = 0; i < NAMES.length; i++) {
            JCudaDriver.cuDeviceGetAttribute(v, BASE + i, dev);
            out[i] = v[0];
        }
        return out;
    }

    static long[] since(long[] before) {
        long[] now = read();
        for (int i = 0; i < now.length; i++) {
            now[i] -= before[i];
        }
        return now;
    }

    static String describe(long[] delta) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < delta.length; i++) {
            b.append(i == 0 ? "" : ", ").append(NAMES[i]).append('=').append(delta[i]);
        }
        return b.toString();
    }
}
