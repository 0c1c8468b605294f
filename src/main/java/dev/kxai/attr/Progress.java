package dev.kxai.attr;

/** Progress of a long path integration, reported after each chunk of steps. */
@FunctionalInterface
public interface Progress {
    void stepsDone(int done, int total);

    Progress NONE = (d, t) -> { };
}
