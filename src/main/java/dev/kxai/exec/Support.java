package dev.kxai.exec;

/** Whether a backend runs a node, decided when the plan is built; the reason names what it lacks. */
public record Support(boolean supported, String reason) {
    public static final Support YES = new Support(true, "");

    public static Support no(String reason) {
        return new Support(false, reason);
    }
}
