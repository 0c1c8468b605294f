package dev.kxai.serve;

import dev.kxai.KxaiException;

/** A request the {@link BatchingExplainer} refused or gave up on (see its class comment). */
public final class QueueFullException extends KxaiException {
    public QueueFullException(String message) {
        super(message);
    }
}
