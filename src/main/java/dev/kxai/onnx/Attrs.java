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

    /** The attribute, or null; one declared with another type than the operator's is refused (it would read as 0). */
    private OnnxMl.AttributeProto get(String name, OnnxMl.AttributeProto.AttributeType want) {
        OnnxMl.AttributeProto a = byName.get(name);
        if (a != null && a.getType() != OnnxMl.AttributeProto.AttributeType.UNDEFINED && a.getType() != want) {
            throw new ModelException(source + ": node '" + node + "': attribute " + name + " is of type " + a.getType()
                    + "; the operator takes " + want);
        }
        return a;
    }

    /** A refusal naming the node, the attribute, its value and the rule it breaks. */
    ModelException bad(String opType, String name, Object value, String rule) {
        String v = value instanceof int[] ia ? java.util.Arrays.toString(ia)
                : value instanceof long[] la ? java.util.Arrays.toString(la) : String.valueOf(value);
        return new ModelException(source + ": node '" + node + "' (" + opType + "): attribute " + name + " = " + v
                + " breaks the rule: " + rule);
    }

    String node() {
        return node;
    }

    boolean has(String name) {
        return byName.containsKey(name);
    }

    float f(String name, float dflt) {
        OnnxMl.AttributeProto a = get(name, OnnxMl.AttributeProto.AttributeType.FLOAT);
        return a == null ? dflt : a.getF();
    }

    long i(String name, long dflt) {
        OnnxMl.AttributeProto a = get(name, OnnxMl.AttributeProto.AttributeType.INT);
        return a == null ? dflt : a.getI();
    }

    /** An int attribute that must fit an int (an axis, a group): beyond int range it is refused, not wrapped. */
    int i32(String name, long dflt) {
        long v = i(name, dflt);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new ModelException(source + ": node '" + node + "': attribute " + name + " = " + v
                    + " is beyond the int range kxai takes");
        }
        return (int) v;
    }

    String s(String name, String dflt) {
        OnnxMl.AttributeProto a = get(name, OnnxMl.AttributeProto.AttributeType.STRING);
        return a == null ? dflt : a.getS().toStringUtf8();
    }

    /** A floats attribute, or null. */
    float[] fs(String name) {
        OnnxMl.AttributeProto a = get(name, OnnxMl.AttributeProto.AttributeType.FLOATS);
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
        OnnxMl.AttributeProto a = get(name, OnnxMl.AttributeProto.AttributeType.INTS);
        if (a == null) {
            return dflt;
        }
        int[] v = new int[a.getIntsCount()];
        for (int k = 0; k < v.length; k++) {
            long x = a.getInts(k);
            if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
                throw new ModelException(source + ": node '" + node + "': attribute " + name + " holds " + x
                        + " at position " + k + ", beyond the int range kxai takes");
            }
            v[k] = (int) x;
        }
        return v;
    }

    int required(String name, String opType) {
        OnnxMl.AttributeProto a = byName.get(name);
        if (a == null) {
            throw new ModelException(source + ": node '" + node + "' (" + opType + ") lacks the required attribute " + name);
        }
        return i32(name, 0);
    }

    int[] required(String name) {
        int[] v = ints(name, null);
        if (v == null) {
            throw new ModelException(source + ": node '" + node + "' lacks the required attribute " + name);
        }
        return v;
    }
}
