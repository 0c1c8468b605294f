package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * {@link BackwardFiniteDifferenceTest} with chunk graphs on ({@link ChunkGraphs}): its finite
 * differences call the forward again and again with one batch shape, which replays a captured graph
 * (validated operation by operation), and the analytic gradients must still agree. Fails if no graph
 * was ever launched (the run would prove nothing about graphs).
 */
class BackwardFiniteDifferenceGraphsTest extends BackwardFiniteDifferenceTest {
    private static boolean before;
    private static ChunkGraphs.Stats start;

    @BeforeAll
    static void graphsOn() {
        before = ChunkGraphs.enabled;
        ChunkGraphs.enabled = true;
        start = ChunkGraphs.stats();
    }

    @AfterAll
    static void graphsBack() {
        ChunkGraphs.enabled = before;
        ChunkGraphs.Stats s = ChunkGraphs.stats().minus(start);
        System.out.println("finite differences with graphs: " + s);
        assertTrue(s.captures() > 0 && s.launches() > s.captures(), "graphs were captured and replayed: " + s);
    }
}
