package dev.kxai.exec;

import java.util.Arrays;

/**
 * Nodes a backend runs as one (a Conv and its Relu on the CPU; a Gemm, its bias Add and its
 * activation on CUDA), chosen when the plan is built. {@code nodes} are plan indices in order, the
 * head first: each reads the previous one's output, which nothing else reads, so the values
 * between them need not exist. {@code detail} is the backend's own description of the group.
 */
public record FusionGroup(int[] nodes, Object detail) {
    public FusionGroup {
        nodes = nodes.clone();
    }

    public int head() {
        return nodes[0];
    }

    public int last() {
        return nodes[nodes.length - 1];
    }

    @Override
    public String toString() {
        return "FusionGroup" + Arrays.toString(nodes) + (detail != null ? " " + detail : "");
    }
}
