package dev.kxai;

/** Input data or parameters that do not fit the model or the method (shape, target, NaN, steps). */
public class InvalidInputException extends KxaiException {
    public InvalidInputException(String message) {
        super(message);
    }

    public InvalidInputException(String message, Throwable cause) {
        super(message, cause);
    }
}
