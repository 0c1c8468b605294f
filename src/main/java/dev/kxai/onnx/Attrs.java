package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import java.util.HashMap;
import java.util.Map;

/** Typed access to a node's attributes with defaults, naming the node on error. */
final class Attrs {
    private final Map<String, OnnxMl.AttributeProto> byName = new HashMap<>();
    private final String node;
    private final String source;

    Attrs(OnnxMl.NodeProto n, String node, String source) {
        for (OnnxMl.AttributeProto a : n.getAttributeList()) {
            byName.put(a.getName(), a);
        }
        this.node = node;
        this.source = source;
    }

    float f(String name, float dflt) {
        OnnxMl.AttributeProto a = byName.get(name);
        return a == null ? dflt : a.getF();
    }

    long i(String name, long dflt) {
        OnnxMl.AttributeProto a = byName.get(name);
        return a == null ? dflt : a.getI();
    }

    String s(String name, String dflt) {
        OnnxMl.AttributeProto a = byName.get(name);
        return a == null ? dflt : a.getS().toStringUtf8();
    }

    /** A floats attribute, or null. */
    float[] fs(String name) {
        OnnxMl.AttributeProto a = byName.get(name);
        if (a == null) {
            return null;
        }
        float[] v = new float[a.getFloatsCount()];
        for (int k = 0; k < v.length; k++) {
            v[k] = a.getFloats(k);
        }
        return v;
    }

    int[] ints(String name, int[] dflt) {
        OnnxMl.AttributeProto a = byName.get(name);
        if (a == null) {
            return dflt;
        }
        int[] v = new int[a.getIntsCount()];
        for (int k = 0; k < v.length; k++) {
            v[k] = Math.toIntExact(a.getInts(k));
        }
        return v;
    }

    int required(String name, String opType) {
        OnnxMl.AttributeProto a = byName.get(name);
        if (a == null) {
            throw new ModelException(source + ": node '" + node + "' (" + opType + ") lacks the required attribute " + name);
        }
        return Math.toIntExact(a.getI());
    }

    int[] required(String name) {
        int[] v = ints(name, null);
        if (v == null) {
            throw new ModelException(source + ": node '" + node + "' lacks the required attribute " + name);
        }
        return v;
    }
}
