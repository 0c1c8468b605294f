package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import java.util.Arrays;

/**
 * Model-level rules of the ONNX checker that the importer's per-node parsing does not see (issue 13's
 * hostile-input table found each accepted): the default domain's opset within the versions kxai knows,
 * nodes only of the default domain, and no subgraph attributes.
 */
final class ImportChecks {
    /**
     * The newest default-domain opset whose operator versions kxai knows (ONNX 1.18); a newer one may
     * have changed an operator's meaning, so it is refused rather than read with older semantics.
     * {@code -Dkxai.max.opset} raises it.
     */
    static final long MAX_OPSET = Long.getLong("kxai.max.opset", 23);

    private ImportChecks() {
    }

    static void model(OnnxMl.ModelProto model, String source) {
        for (OnnxMl.OperatorSetIdProto o : model.getOpsetImportList()) {
            boolean standard = o.getDomain().isEmpty() || o.getDomain().equals("ai.onnx");
            if (standard && (o.getVersion() < 1 || o.getVersion() > MAX_OPSET)) {
                throw new ModelException(source + ": opset " + o.getVersion() + " of the default ONNX domain is "
                        + (o.getVersion() < 1 ? "not a version (opsets start at 1)" : "newer than the newest kxai knows ("
                                + MAX_OPSET + "; raise it with -Dkxai.max.opset=N at your own risk)"));
            }
        }
        int index = 0;
        for (OnnxMl.NodeProto n : model.getGraph().getNodeList()) {
            String name = n.getName().isEmpty() ? n.getOpType() + "_" + index : n.getName();
            index++;
            if (!n.getDomain().isEmpty() && !n.getDomain().equals("ai.onnx")) {
                throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") is of domain '"
                        + n.getDomain() + "'; kxai runs operators of the default ONNX domain only");
            }
            for (OnnxMl.AttributeProto a : n.getAttributeList()) {
                if (a.getType() == OnnxMl.AttributeProto.AttributeType.GRAPH
                        || a.getType() == OnnxMl.AttributeProto.AttributeType.GRAPHS || a.hasG() || a.getGraphsCount() > 0) {
                    throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") has a subgraph "
                            + "attribute '" + a.getName() + "'; kxai runs no control flow or subgraphs");
                }
            }
        }
    }
}
