package dev.kxai.report;

/** Shape checks shared by the renderers and summaries, so both reject bad input the same way. */
final class Chw {
    private Chw() {}

    /** Returns channels*height*width after checking that {@code data} has exactly that length. */
    static int checkLength(String name, float[] data, int channels, int height, int width) {
        if (data == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
        if (channels <= 0 || height <= 0 || width <= 0) {
            throw new IllegalArgumentException("channels, height and width must be positive, got "
                    + channels + "x" + height + "x" + width);
        }
        long expected = (long) channels * height * width;
        if (expected != data.length) {
            throw new IllegalArgumentException(name + " length must be channels*height*width = "
                    + channels + "*" + height + "*" + width + " = " + expected
                    + ", but was " + data.length);
        }
        return (int) expected;
    }
}
