package dev.kxai;

/** A model file that cannot be read, is not ONNX, or describes a graph kxai cannot run. */
public class ModelException extends KxaiException {
    public ModelException(String message) {
        super(message);
    }

    public ModelException(String message, Throwable cause) {
        super(message, cause);
    }
}
