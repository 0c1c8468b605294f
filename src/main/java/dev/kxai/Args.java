package dev.kxai;

/** Argument checks of the public API: a null argument is an {@link InvalidInputException} naming the parameter. */
public final class Args {
    private Args() {
    }

    /** Returns {@code v}; a null is refused, naming {@code parameter}. */
    public static <T> T notNull(T v, String parameter) {
        if (v == null) {
            throw new InvalidInputException(parameter + " is null");
        }
        return v;
    }
}
