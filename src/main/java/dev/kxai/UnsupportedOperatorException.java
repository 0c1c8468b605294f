package dev.kxai;

import java.util.Collection;

/** An ONNX node whose operator type kxai does not implement. */
public class UnsupportedOperatorException extends ModelException {
    private final String opType;
    private final String nodeName;

    public UnsupportedOperatorException(String source, String opType, String nodeName, Collection<String> supported) {
        super(source + ": unsupported operator " + opType + " in node '" + nodeName + "'; supported: "
                + String.join(", ", supported));
        this.opType = opType;
        this.nodeName = nodeName;
    }

    public String opType() {
        return opType;
    }

    public String nodeName() {
        return nodeName;
    }
}
