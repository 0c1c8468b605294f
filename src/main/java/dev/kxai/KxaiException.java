package dev.kxai;

/**
 * Base of every error kxai reports to its users. Messages name the file, node, shape or value at
 * fault, so that the CLI can print them as they are (exit status 2) without a stack trace.
 */
public class KxaiException extends RuntimeException {
    public KxaiException(String message) {
        super(message);
    }

    public KxaiException(String message, Throwable cause) {
        super(message, cause);
    }
}
