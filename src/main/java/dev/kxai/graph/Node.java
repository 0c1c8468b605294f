package dev.kxai.graph;

import java.util.List;

/**
 * One operator application: reads named values, writes one named value.
 *
 * @param name   the ONNX node name (or a generated one), used in error messages
 * @param opType the ONNX operator type, as written in the file
 */
public record Node(String name, String opType, Op op, List<String> inputs, String output) {
    public Node {
        inputs = List.copyOf(inputs);
    }
}
