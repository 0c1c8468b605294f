/**
 * The backend-neutral model: typed operators ({@link dev.kxai.graph.Op}), nodes, and the graph
 * with its constants. Built by {@code dev.kxai.onnx}, run by the backends.
 */
package dev.kxai.graph;
