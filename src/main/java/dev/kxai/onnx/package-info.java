/** ONNX import: protobuf model files to {@link dev.kxai.graph.Graph}, refusing what kxai cannot run. */
package dev.kxai.onnx;
