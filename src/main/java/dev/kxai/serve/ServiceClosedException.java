package dev.kxai.serve;

import dev.kxai.KxaiException;

/** A request the {@link BatchingExplainer} refused or gave up on (see its class comment). */
public final class ServiceClosedException extends KxaiException {
    public ServiceClosedException(String message) {
        super(message);
    }
}
