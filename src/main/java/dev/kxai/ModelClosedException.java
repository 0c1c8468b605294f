package dev.kxai;

/**
 * A call on a {@link Model} (or its runner) after {@link Model#close()}: its weights are freed, so
 * nothing is computed. The backend is untouched: other models, and later loads, run as before.
 */
public class ModelClosedException extends KxaiException {
    public ModelClosedException(String message) {
        super(message);
    }
}
