package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.kxai.ModelException;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads an ONNX file (protobuf classes from {@code ai.onnx.proto}, not a hand-written parser)
 * into a {@link Graph}. Everything kxai cannot run is refused here, with the file and node named,
 * so that a backend never meets an operator or attribute it does not know.
 */
public final class OnnxImporter {
    /** Operator types the importer accepts, in the order the README lists them. */
    public static final List<String> SUPPORTED = java.util.stream.Stream.of(List.of("Gemm", "MatMul", "Add", "Sub", "Mul", "Relu",
            "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "Flatten", "Reshape", "Identity", "Constant", "Conv",
            "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "Concat", "Pad", "Clip", "HardSigmoid",
            "HardSwish", "Sqrt", "Exp", "Log", "Erf", "Softplus", "Elu", "Selu", "Gelu", "Neg", "Abs", "Floor", "Ceil", "Round", "Sign", "Reciprocal", "Dropout", "Div", "Pow", "Transpose", "Squeeze", "Unsqueeze", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "Expand", "Gather", "Slice",
            "Shape", "Size", "ConstantOfShape", "Cast", "CastLike", "QuantizeLinear", "DequantizeLinear", "Equal", "Less", "Greater", "Where", "Range", "Not", "Min", "Max",
            "LayerNormalization", "Split", "LSTM", "GRU", "Resize", "Upsample"), Lowerings.OPS, IndexLowerings.OPS,
            SpatialLowerings.OPS, MoreFolding.LISTED)
            .flatMap(List::stream).toList();

    private OnnxImporter() {
    }

    public static Graph load(Path file) {
        return load(file, FreeDims.NONE);
    }

    /** {@link #load(Path)}, with sizes for the inputs' free dimensions beyond the batch. */
    public static Graph load(Path file, FreeDims dims) {
        return load(file, dims, null);
    }

    /**
     * {@link #load(Path, FreeDims)} explaining {@code output} (a graph output or any node's value; null:
     * the first graph output); operators outside what that value needs are not read.
     */
    public static Graph load(Path file, FreeDims dims, String output) {
        dev.kxai.Args.notNull(dims, "dims");
        if (!Files.exists(file)) {
            throw new ModelException("no such model file: " + file);
        }
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new ModelException("model file is not a readable file: " + file);
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ModelException("cannot read model file " + file + ": " + e.getMessage(), e);
        }
        Path dir = file.toAbsolutePath().getParent();
        return parse(bytes, file.toString(), new ExternalData(dir), dims, output);
    }

    /** A model held in memory: tensors with external data are refused (there is no folder to find them in). */
    public static Graph parse(byte[] bytes, String source) {
        return parse(bytes, source, new ExternalData(null), FreeDims.NONE);
    }

    private static Graph parse(byte[] bytes, String source, ExternalData ext, FreeDims dims) {
        return parse(bytes, source, ext, dims, null);
    }

    /**
     * {@code output}: the value to explain (null: the graph's first output). Where the whole graph holds
     * an operator kxai does not run, only the nodes that value needs are read (null: the first graph
     * output whose nodes kxai runs, with a warning naming it).
     */
    private static Graph parse(byte[] bytes, String source, ExternalData ext, FreeDims dims, String output) {
        OnnxMl.ModelProto model;
        try {
            model = OnnxMl.ModelProto.parseFrom(bytes);
        } catch (InvalidProtocolBufferException e) {
            throw new ModelException(source + " is not an ONNX model (corrupt or truncated protobuf: "
                    + e.getMessage() + ")", e);
        }
        // Protobuf accepts many non-ONNX byte strings as a message with unknown fields; an ONNX model
        // always declares its IR version and has a graph with at least one node.
        if (model.getIrVersion() <= 0 || !model.hasGraph() || model.getGraph().getNodeCount() == 0) {
            throw new ModelException(source + " is not an ONNX model (no IR version or no graph nodes)");
        }
        // the default domain's opset decides operator versions (Softmax changed at 13)
        long opset = model.getOpsetImportList().stream()
                .filter(o -> o.getDomain().isEmpty() || o.getDomain().equals("ai.onnx"))
                .mapToLong(OnnxMl.OperatorSetIdProto::getVersion).max().orElse(LATEST_OPSET_SEMANTICS);
        try {
            ImportChecks.model(model, source);
            Graph all = new OnnxImporter.Builder(model.getGraph(), source, opset, ext, dims.resolution(source)).build();
            return output == null ? all : all.withOutput(output);
        } catch (ModelException e) {
            if (!OutputCone.unsupported(e)) {
                throw e;
            }
            // an operator kxai does not run: fine where the explained output does not need it
            // (sklearn-onnx's label branch of ai.onnx.ml operators beside the probabilities)
            for (String candidate : OutputCone.candidates(model.getGraph(), output)) {
                OnnxMl.ModelProto cone = OutputCone.of(model, candidate);
                if (cone == null) {
                    continue;
                }
                try {
                    ImportChecks.model(cone, source);
                    Graph g = new OnnxImporter.Builder(cone.getGraph(), source, opset, ext, dims.resolution(source)).build();
                    if (output == null) {
                        java.util.logging.Logger.getLogger(OnnxImporter.class.getName()).warning(source + ": explaining '"
                                + candidate + "': the graph's first output needs what kxai does not run (" + e.getMessage()
                                + ")");
                    }
                    return g;
                } catch (ModelException again) {
                    if (!OutputCone.unsupported(again)) {
                        throw again;
                    }
                }
            }
            throw e;
        }
    }

    /** Opset assumed when a model declares none for the default domain. */
    private static final long LATEST_OPSET_SEMANTICS = 13;

    private static final class Builder {
        private final OnnxMl.GraphProto g;
        private final String source;
        private final LoadTime lt;
        /** The graph's constants: the load-time values' map, plus batch-dependent ones at batch 1. */
        private final Map<String, Tensor> constants;
        private final List<Node> nodes = new ArrayList<>();
        /** Values a node may read: the graph inputs and node outputs so far (load-time values are in lt). */
        private final Set<String> known = new HashSet<>();

        private final long opset;
        /** Where tensors stored outside the model file are read from. */
        private final ExternalData ext;
        private final OpParser ops;
        private final Decompositions.Sink sink;
        /** Sizes of the inputs' free dimensions beyond the batch. */
        private final FreeDims.Resolution dims;
        /** QuantizeLinear / DequantizeLinear: folded on constants, pairs lowered ({@link Quantization}). */
        private final Quantization quantization;
        /** Row indices (r·T + a per-row position) waiting for the Gather that reads them ({@link BatchRowIndex}). */
        private final Map<String, BatchRowIndex.Index> rowIndices = new java.util.HashMap<>();
        /** The batch every graph input fixes on its first axis (an export without dynamic axes), or 0 ({@link StaticBatch}). */
        private int exportBatch;
        /** Names of batch axes (axis 0), which stay free whatever the caller fixes. */
        private final Set<String> batchAxisNames = new HashSet<>();

        Builder(OnnxMl.GraphProto g, String source, long opset, ExternalData ext, FreeDims.Resolution dims) {
            this.g = g;
            this.dims = dims;
            this.ext = ext;
            this.source = source;
            this.opset = opset;
            this.lt = new LoadTime(source);
            this.constants = lt.constants();
            this.ops = new OpParser(g, source, opset, lt);
            this.quantization = new Quantization(source, g, lt);
            this.sink = new Decompositions.Sink() {
                @Override
                public void node(Node n) {
                    add(n);
                }

                @Override
                public void constant(String name, Tensor t) {
                    lt.putConstant(name, t, false);
                }

                @Override
                public int[] shape(String value, String node) {
                    return lt.shapeAt(value, 0, node);
                }

                @Override
                public void onnx(OnnxMl.NodeProto n, String name) {
                    addNodes(n, name);
                }
            };
        }

        Graph build() {
            // a name declared twice is two values under one name (found by fuzzing: a repeated graph input)
            java.util.Set<String> declared = new java.util.HashSet<>();
            for (OnnxMl.ValueInfoProto vi : g.getInputList()) {
                if (!declared.add(vi.getName())) {
                    throw new ModelException(source + ": the graph declares input '" + vi.getName() + "' twice");
                }
            }
            declared.clear();
            for (OnnxMl.TensorProto t : g.getInitializerList()) {
                if (!declared.add(t.getName())) {
                    throw new ModelException(source + ": the graph has two initializers named '" + t.getName() + "'");
                }
            }
            for (OnnxMl.TensorProto t : g.getInitializerList()) {
                lt.putConstant(t.getName(), tensor(t, "initializer " + t.getName()), isIntegerType(t.getDataType()));
            }
            List<Graph.Input> inputs = new ArrayList<>();
            for (OnnxMl.ValueInfoProto vi : g.getInputList()) {
                if (!lt.isConstant(vi.getName())) {
                    inputs.add(input(vi));
                }
            }
            if (inputs.isEmpty()) {
                throw new ModelException(source + ": the graph has no input tensor (every declared input is an initializer)");
            }
            dims.checkAllUsed(batchAxisNames);
            if (g.getOutputCount() < 1) {
                throw new ModelException(source + ": the graph declares no output");
            }
            for (Graph.Input in : inputs) {
                lt.addInput(in.name(), in.shape(), in.integer());
                known.add(in.name());
            }
            exportBatch = StaticBatch.exportBatch(g.getInputList(), lt);
            checkSingleAssignment(inputs);
            int index = 0;
            for (OnnxMl.NodeProto n : g.getNodeList()) {
                String name = n.getName().isEmpty() ? n.getOpType() + "_" + index : n.getName();
                index++;
                if (n.getOutputCount() < 1) {
                    throw new ModelException(source + ": node '" + name + "' has no output");
                }
                boolean optionalY = List.of("LSTM", "GRU").contains(n.getOpType())
                        && n.getOutputList().stream().anyMatch(o -> !o.isEmpty());
                if (n.getOutput(0).isEmpty() && !optionalY) { // a recurrent node may omit Y and keep Y_h
                    throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") has an empty output name");
                }
                // every operator but Constant reads a first input (found by fuzzing: a Gather without one)
                if (!n.getOpType().equals("Constant") && (n.getInputCount() < 1 || n.getInput(0).isEmpty())) {
                    throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") has no first input");
                }
                for (String s : n.getInputList()) {
                    if (!s.isEmpty() && !known.contains(s) && !lt.isLoadTime(s)) {
                        throw new ModelException(source + ": node '" + name + "' reads '" + s
                                + "', which no earlier node or initializer produces (graph not topologically sorted?)");
                    }
                }
                if (n.getOpType().equals("CastLike")) {
                    n = castLike(n, name);
                }
                if (Quantization.handles(n.getOpType())) {
                    quantization.node(n, name, opset, sink);
                    if (quantization.isPending(n.getOutput(0))) {
                        known.add(n.getOutput(0)); // read only by its DequantizeLinear
                    }
                    continue;
                }
                if (!foldAtLoad(n, name)) {
                    addNodes(n, name);
                }
            }
            String out = g.getOutput(0).getName();
            if (quantization.isPending(out)) {
                throw quantization.refusal(out, "graph output", "its integer value");
            }
            if (!known.contains(out)) {
                throw new ModelException(source + ": graph output '" + out + "' is "
                        + (lt.isLoadTime(out) ? "a constant: it does not depend on the input" : "produced by no node"));
            }
            for (OnnxMl.ValueInfoProto o : g.getOutputList()) {
                checkDeclaredOutput(o, inputs);
            }
            Map<String, Tensor> perRow = new LinkedHashMap<>();
            for (Node node : nodes) {
                for (String v : node.inputs()) {
                    if (lt.isBatchDependent(v) && !perRow.containsKey(v)) {
                        perRow.put(v, lt.perRow(v, node.name()));
                        constants.put(v, lt.valueAt(v, 0));
                    }
                }
            }
            return new Graph(source, inputs, out, nodes, constants, perRow);
        }

        /**
         * The graph output's declared shape against the one computed from the declared input shapes (the
         * shapes LoadTime inferred node by node at batch 1, 2, 3): a model whose output contradicts its own
         * declaration (a fixed dim that is another fixed number, or another rank) is refused, naming the output
         * and both shapes. Not compared: a missing declared shape, symbolic or unknown dims, and dims that grow
         * with the batch. The last is an exporter pattern, not a contradiction: torch.onnx and others write the
         * batch they traced with (often 1) into the output while the input's batch is dynamic, or fix the batch
         * of both; kxai runs every batch size, so such a dim is the computed one at some batch. Skipped where
         * the shapes are not known at load (shape inference refused a node: the plan then refuses the model
         * with that node named) or an input has a dynamic dim besides the batch (the plan refuses those too).
         * Every graph output is checked whose shape is known (a node's output: another output can be the one
         * explained); an output no node computes, or a constant one, is skipped here.
         */
        private void checkDeclaredOutput(OnnxMl.ValueInfoProto output, List<Graph.Input> inputs) {
            String out = output.getName();
            OnnxMl.TypeProto type = output.getType();
            if (!type.hasTensorType() || !type.getTensorType().hasShape()) {
                return;
            }
            for (Graph.Input in : inputs) {
                int[] s = in.shape();
                for (int i = 1; i < s.length; i++) {
                    if (s[i] < 0) {
                        return;
                    }
                }
            }
            int[][] at = new int[LoadTime.BATCHES][];
            for (int b = 0; b < at.length; b++) {
                at[b] = lt.inferredShape(out, b);
                if (at[b] == null || at[b].length != at[0].length) {
                    return;
                }
            }
            List<OnnxMl.TensorShapeProto.Dimension> dims = type.getTensorType().getShape().getDimList();
            boolean contradicts = dims.size() != at[0].length;
            StringBuilder declared = new StringBuilder("[");
            for (int i = 0; i < dims.size(); i++) {
                OnnxMl.TensorShapeProto.Dimension d = dims.get(i);
                declared.append(i > 0 ? ", " : "").append(d.hasDimValue() ? String.valueOf(d.getDimValue())
                        : d.hasDimParam() && !d.getDimParam().isEmpty() ? d.getDimParam() : "?");
                if (!contradicts && d.hasDimValue()) {
                    boolean fixed = true;
                    for (int b = 1; b < at.length; b++) {
                        fixed &= at[b][i] == at[0][i];
                    }
                    contradicts = fixed && d.getDimValue() != at[0][i];
                }
            }
            if (contradicts) {
                StringBuilder computed = new StringBuilder("[");
                for (int i = 0; i < at[0].length; i++) {
                    int k = at[1][i] - at[0][i];
                    int a = at[0][i] - k;
                    computed.append(i > 0 ? ", " : "").append(k == 0 ? String.valueOf(a)
                            : (k == 1 ? "N" : k + "N") + (a > 0 ? "+" + a : a < 0 ? String.valueOf(a) : ""));
                }
                StringBuilder ins = new StringBuilder();
                for (Graph.Input in : inputs) {
                    int[] s = in.shape();
                    StringBuilder shape = new StringBuilder("[N");
                    for (int i = 1; i < s.length; i++) {
                        shape.append(", ").append(s[i]);
                    }
                    ins.append(ins.length() > 0 ? ", " : "").append("'").append(in.name()).append("' ").append(shape).append("]");
                }
                throw new ModelException(source + ": graph output '" + out + "' is declared with shape " + declared
                        + "] but the graph computes " + computed + "] from its input" + (inputs.size() > 1 ? "s " : " ")
                        + ins + " (N: the batch size); a model whose output contradicts its own declaration is refused");
            }
        }

        /**
         * ONNX graphs are in single static assignment form: every value is written once, by one node, or is a
         * graph input or initializer. A second writer (two nodes with one output name, or a node output that
         * shadows an input or initializer) makes readers see one of two values; refused, naming both.
         */
        private void checkSingleAssignment(List<Graph.Input> inputs) {
            Map<String, String> writer = new java.util.HashMap<>();
            for (OnnxMl.TensorProto t : g.getInitializerList()) {
                String was = writer.putIfAbsent(t.getName(), "initializer '" + t.getName() + "'");
                if (was != null) {
                    throw new ModelException(source + ": two initializers are named '" + t.getName() + "'; ONNX values "
                            + "are written once");
                }
            }
            for (Graph.Input in : inputs) {
                writer.putIfAbsent(in.name(), "graph input '" + in.name() + "'");
            }
            int index = 0;
            for (OnnxMl.NodeProto n : g.getNodeList()) {
                String name = n.getName().isEmpty() ? n.getOpType() + "_" + index : n.getName();
                index++;
                for (String out : n.getOutputList()) {
                    if (out.isEmpty()) {
                        continue; // an omitted optional output
                    }
                    String was = writer.putIfAbsent(out, "node '" + name + "' (" + n.getOpType() + ")");
                    if (was != null) {
                        throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") writes '" + out
                                + "', which " + was + " already writes; an ONNX value has one writer (single assignment)");
                    }
                }
            }
        }

        /** A declared shape as written: "[batch, sequence_length, 8]" ("?" for a dimension with neither size nor name). */
        private static String declared(List<OnnxMl.TensorShapeProto.Dimension> dims) {
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < dims.size(); i++) {
                OnnxMl.TensorShapeProto.Dimension d = dims.get(i);
                b.append(i > 0 ? ", " : "").append(d.hasDimValue() ? String.valueOf(d.getDimValue())
                        : d.hasDimParam() && !d.getDimParam().isEmpty() ? d.getDimParam() : "?");
            }
            return b.append(']').toString();
        }

        /** A graph input: float32 (attributable), or int32/int64 (token ids, read by a Gather). */
        private Graph.Input input(OnnxMl.ValueInfoProto in) {
            int elemType = in.getType().getTensorType().getElemType();
            boolean integer = elemType == OnnxMl.TensorProto.DataType.INT64_VALUE
                    || elemType == OnnxMl.TensorProto.DataType.INT32_VALUE;
            // float16, bfloat16 and float64 models run in float32 (their weights are widened at load,
            // their Casts to those types are identities): one attributable float input either way
            boolean floating = elemType == OnnxMl.TensorProto.DataType.FLOAT_VALUE
                    || elemType == OnnxMl.TensorProto.DataType.FLOAT16_VALUE
                    || elemType == OnnxMl.TensorProto.DataType.BFLOAT16_VALUE
                    || elemType == OnnxMl.TensorProto.DataType.DOUBLE_VALUE;
            if (!floating && !integer) {
                throw new ModelException(source + ": input '" + in.getName() + "' has element type "
                        + TensorReader.typeName(elemType) + " (" + elemType + "); kxai takes float32 (1), float16 (10),"
                        + " bfloat16 (16) or float64 (11) inputs (computed in float32), and int64 (7) or int32 (6) token ids");
            }
            List<OnnxMl.TensorShapeProto.Dimension> dims = in.getType().getTensorType().getShape().getDimList();
            int[] shape = new int[dims.size()];
            for (int i = 0; i < dims.size(); i++) {
                if (!dims.get(i).hasDimValue()) {
                    String param = dims.get(i).getDimParam();
                    if (i == 0) {
                        shape[i] = -1; // the batch axis
                        batchAxisNames.add(param);
                        continue;
                    }
                    shape[i] = this.dims.size(in.getName(), i, param);
                    if (shape[i] < 1) {
                        String named = param.isEmpty() ? in.getName() + ":" + i : param;
                        throw new ModelException(source + ": input '" + in.getName() + "' has a free dimension "
                                + (param.isEmpty() ? "" : "'" + param + "' ") + "at axis " + i + " " + declared(dims)
                                + "; kxai fixes every dimension but the batch at load: give its size (CLI: --dim "
                                + named + "=SIZE, or an --input file of that shape; API: Model.load(file, device, output, "
                                + "FreeDims.of(Map.of(\"" + named + "\", SIZE))))");
                    }
                    continue;
                }
                long d = dims.get(i).getDimValue();
                if (d < 0 || d > Integer.MAX_VALUE) {
                    throw new ModelException(source + ": input '" + in.getName() + "' declares dimension " + d + " at axis "
                            + i + ", " + (d < 0 ? "negative" : "beyond the " + Integer.MAX_VALUE + " kxai takes per axis"));
                }
                shape[i] = (int) d;
            }
            long elements = 1;
            for (int i = 1; i < shape.length; i++) {
                elements *= Math.max(1, shape[i]); // each factor < 2^31: checked after every step, no overflow
                if (elements > TensorReader.MAX_ELEMENTS) {
                    throw new ModelException(source + ": input '" + in.getName() + "' declares " + Shapes.str(shape)
                            + ": more than " + TensorReader.MAX_ELEMENTS + " elements per example");
                }
            }
            if (shape.length == 0) {
                throw new ModelException(source + ": input '" + in.getName() + "' has no batch axis (rank 0)");
            }
            return new Graph.Input(in.getName(), shape, integer);
        }

        /**
         * Evaluates a node now when everything it reads is known at load (constants, and shapes of
         * activations for Shape and Size); returns false for a node that must run per request.
         */
        private boolean foldAtLoad(OnnxMl.NodeProto n, String name) {
            String op = n.getOpType();
            if (op.equals("Constant")) {
                OnnxMl.AttributeProto v = n.getAttributeList().stream().filter(x -> x.getName().equals("value"))
                        .findFirst().orElse(null);
                boolean integer = v != null ? isIntegerType(v.getT().getDataType())
                        : n.getAttributeList().stream().anyMatch(x -> x.getName().startsWith("value_int"));
                lt.putConstant(n.getOutput(0), constantValue(n, name), integer);
                return true;
            }
            List<String> ins = n.getInputList();
            if (ins.isEmpty() || !ConstantFolding.FOLDABLE.contains(op)) {
                return false;
            }
            boolean shapeOfActivation = (op.equals("Shape") || op.equals("Size")) && !lt.isLoadTime(ins.get(0));
            if (!shapeOfActivation && !ins.stream().allMatch(i -> i.isEmpty() || lt.isLoadTime(i))) {
                return false;
            }
            boolean integerIn = lt.isInteger(ins.get(op.equals("Where") ? Math.min(1, ins.size() - 1) : 0));
            ConstantFolding.Node f = foldable(n, name, integerIn);
            Tensor[] at = new Tensor[LoadTime.BATCHES];
            for (int b = 0; b < LoadTime.BATCHES; b++) {
                try {
                    if (shapeOfActivation) {
                        int[] shape = lt.shapeAt(ins.get(0), b, name);
                        at[b] = op.equals("Size") ? Tensor.scalar(Shapes.size(shape))
                                : ConstantFolding.shapeOf(shape, f.intAttr("start", 0), f.intAttr("end", Long.MAX_VALUE));
                    } else {
                        List<Tensor> values = new ArrayList<>();
                        for (String i : ins) {
                            values.add(i.isEmpty() ? null : lt.valueAt(i, b));
                        }
                        at[b] = ConstantFolding.fold(f, values);
                    }
                } catch (ModelException e) {
                    String m = e.getMessage();
                    throw m.startsWith(source + ": ") ? e : new ModelException(source + ": " + m, e);
                } catch (IndexOutOfBoundsException | NegativeArraySizeException | ArithmeticException
                        | IllegalArgumentException | NullPointerException e) {
                    // a constant sub-graph whose values or attributes no rule above caught (found by
                    // fuzzing): refused with the node named, never a raw exception
                    throw new ModelException(source + ": node '" + name + "' (" + op + "): cannot evaluate it at load "
                            + "time, its constant inputs or attributes are inconsistent (" + e + ")", e);
                }
            }
            for (int b = 1; b < LoadTime.BATCHES; b++) {
                if (!Arrays.equals(at[b].shape(), at[0].shape())) {
                    if (BatchRowIndex.stride(at) > 0) {
                        break; // each row's offset r·T (a Range over the batch): kept for a row index
                    }
                    return false; // a tensor with a batch axis (a class token expanded to the batch): run per request
                }
            }
            lt.putComputed(n.getOutput(0), at, resultIsInteger(n, integerIn));
            return true; // computed now: costs nothing per request
        }

        /**
         * Element-wise Max/Min of 1 or more inputs (NumPy broadcasting) per request, as a chain of
         * selections: r = x0, then r = Where(xi > r, xi, r) (Min: xi < r). The forward is the exact
         * max/min; the gradient goes to the selected operand, on a tie to the earlier one (PyTorch's
         * maximum splits a tie's gradient in halves: a measure-zero difference).
         */
        private void minMax(OnnxMl.NodeProto n, String name) {
            List<String> ins = new ArrayList<>();
            for (String s : n.getInputList()) {
                if (!s.isEmpty()) {
                    ins.add(s);
                }
            }
            if (ins.isEmpty()) {
                throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") has no inputs");
            }
            boolean max = n.getOpType().equals("Max");
            if (ins.size() == 1) {
                add(new Node(name, n.getOpType(), new Op.Identity(), ins, n.getOutput(0)));
                return;
            }
            String r = ins.get(0);
            for (int i = 1; i < ins.size(); i++) {
                boolean last = i == ins.size() - 1;
                String p = n.getOutput(0) + "/" + i + "/";
                add(new Node(name + "/" + i + "/compare", max ? "Greater" : "Less",
                        new Op.Compare(max ? Op.Compare.Kind.GREATER : Op.Compare.Kind.LESS), List.of(ins.get(i), r),
                        p + "takes"));
                String out = last ? n.getOutput(0) : p + "result";
                add(new Node(last ? name : name + "/" + i, "Where", new Op.Where(), List.of(p + "takes", ins.get(i), r),
                        out));
                r = out;
            }
        }

        /**
         * CastLike (opset 15; torch's dynamo exporter writes it wherever a constant meets a value) as
         * the Cast to its second input's element type: an initializer's, a graph input's or a
         * Constant's, else integer where kxai knows the value holds integers, float otherwise.
         */
        private OnnxMl.NodeProto castLike(OnnxMl.NodeProto n, String name) {
            if (n.getInputCount() != 2 || n.getInput(1).isEmpty()) {
                throw new ModelException(source + ": node '" + name + "' (CastLike) needs 2 inputs (the value and one of"
                        + " the wanted type); it has " + n.getInputCount());
            }
            String like = n.getInput(1);
            int type = -1;
            for (OnnxMl.TensorProto t : g.getInitializerList()) {
                type = t.getName().equals(like) ? t.getDataType() : type;
            }
            for (OnnxMl.ValueInfoProto vi : g.getInputList()) {
                type = vi.getName().equals(like) && type < 0 ? vi.getType().getTensorType().getElemType() : type;
            }
            for (OnnxMl.NodeProto c : g.getNodeList()) {
                if (type < 0 && c.getOpType().equals("Constant") && c.getOutputList().contains(like)) {
                    for (OnnxMl.AttributeProto a : c.getAttributeList()) {
                        type = a.getName().equals("value") ? a.getT().getDataType() : type;
                    }
                }
            }
            if (type <= 0) {
                type = lt.isInteger(like) ? OnnxMl.TensorProto.DataType.INT64_VALUE : OnnxMl.TensorProto.DataType.FLOAT_VALUE;
            }
            OnnxMl.NodeProto.Builder b = n.toBuilder().setOpType("Cast").clearInput().addInput(n.getInput(0))
                    .clearAttribute().addAttribute(OnnxMl.AttributeProto.newBuilder().setName("to").setI(type)
                            .setType(OnnxMl.AttributeProto.AttributeType.INT));
            return b.build();
        }

        /** The element type of a folded result: integer or bool where ONNX's would be. */
        private boolean resultIsInteger(OnnxMl.NodeProto n, boolean integerIn) {
            return switch (n.getOpType()) {
                case "Shape", "Size", "Equal", "Less", "Greater", "Not", "GreaterOrEqual", "LessOrEqual", "And", "Or",
                        "Xor", "ArgMax", "ArgMin", "NonZero" -> true;
                case "OneHot" -> n.getInputCount() > 2 && lt.isInteger(n.getInput(2));
                case "Cast" -> isIntegerType(new Attrs(n, n.getName(), source).i("to", 1));
                case "ConstantOfShape" -> n.getAttributeList().stream().anyMatch(
                        x -> x.getName().equals("value") && isIntegerType(x.getT().getDataType()));
                default -> integerIn;
            };
        }

        private static boolean isIntegerType(long t) {
            return ConstantFolding.INTEGER_TYPES.contains(t);
        }

        /** A node that runs per request: refused if it reads a batch-dependent value it cannot take. */
        private void addNodes(OnnxMl.NodeProto node, String name) {
            OnnxMl.NodeProto n = StaticBatch.rewrite(node, name, source, exportBatch, lt, known, sink);
            if (n.getOpType().equals("Add") && rowIndex(n)) {
                return;
            }
            for (int j = 0; j < n.getInputCount(); j++) {
                String v = n.getInput(j);
                if (quantization.isPending(v)) {
                    throw quantization.refusal(v, name, n.getOpType());
                }
                if (rowIndices.containsKey(v) && !(j == 1 && n.getOpType().equals("Gather"))) {
                    throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") reads '" + v
                            + "', each row's offset in the flattened batch plus a per-row position (PyTorch's "
                            + "h[torch.arange(B), idx]); kxai takes it only as the indices of a Gather along axis 0");
                }
                boolean shapeInput = j == 1 && (n.getOpType().equals("Reshape") || n.getOpType().equals("Expand"))
                        || j == 3 && n.getOpType().equals("Resize")
                        || j == 0 && n.getOpType().equals("ConstantOfShape");
                if (lt.isBatchDependent(v) && !shapeInput) {
                    throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") reads '" + v
                            + "', computed from the batch size; kxai takes such values only as the target shape of a "
                            + "Reshape, Expand or ConstantOfShape");
                }
            }
            if (n.getOpType().equals("Gather") || n.getOpType().equals("Slice")) {
                selectNodes(n, name);
                return;
            }
            if (n.getOpType().equals("LayerNormalization")) {
                Decompositions.layerNormalization(n, name, source, g, sink);
                return;
            }
            if (n.getOpType().equals("MatMul") && n.getInputCount() == 2
                    && Decompositions.matMul(n, name, source, lt, sink)) {
                return;
            }
            boolean toBool = n.getOpType().equals("Cast") && new Attrs(n, name, source).i("to", 1)
                    == OnnxMl.TensorProto.DataType.BOOL_VALUE;
            if (n.getOpType().equals("Not") || toBool) {
                // x == 0 (Not) or x != 0 (Cast to bool), against a zero constant
                String zero = name + "/zero";
                lt.putConstant(zero, Tensor.scalar(0f), false);
                add(new Node(name, n.getOpType(), new Op.Compare(toBool ? Op.Compare.Kind.NOT_EQUAL
                        : Op.Compare.Kind.EQUAL), List.of(n.getInput(0), zero), n.getOutput(0)));
                return;
            }
            if (CubicResize.handles(n, name, source)) {
                CubicResize.lower(n, name, source, lt, sink);
                return;
            }
            if (n.getOpType().equals("Resize") || n.getOpType().equals("Upsample")) {
                Op.Resize r = ops.resize(n, name);
                boolean bySizes = r.scales() == null;
                add(new Node(name, n.getOpType(), r, bySizes ? List.of(n.getInput(0), n.getInput(3)) : List.of(n.getInput(0)),
                        n.getOutput(0)));
                return;
            }
            if (n.getOpType().equals("LSTM") || n.getOpType().equals("GRU")) {
                Recurrent.unroll(n, name, source, lt, sink);
                return;
            }
            if (n.getOpType().equals("Split")) {
                Decompositions.split(n, name, source, opset, lt, sink);
                return;
            }
            if (n.getOpType().equals("Max") || n.getOpType().equals("Min")) {
                minMax(n, name);
                return;
            }
            if (SpatialLowerings.handles(n, lt, name)) {
                SpatialLowerings.lower(n, name, source, lt, sink);
                return;
            }
            if (Lowerings.handles(n.getOpType())) {
                Lowerings.lower(n, name, source, opset, lt, sink);
                return;
            }
            if (IndexLowerings.handles(n.getOpType())) {
                IndexLowerings.lower(n, name, source, opset, lt, sink);
                return;
            }
            Op op = ops.op(n, name);
            List<String> ins = new ArrayList<>();
            for (String s : n.getInputList()) {
                if (!s.isEmpty()) { // an omitted optional input
                    ins.add(s);
                }
            }
            ops.checkArity(n.getOpType(), name, ins.size());
            if (op instanceof Op.Pad || op instanceof Op.Unary || op instanceof Op.Squeeze || op instanceof Op.Unsqueeze
                    || op instanceof Op.Reduce || n.getOpType().equals("Dropout")) {
                ins = ins.subList(0, 1); // pads, bounds, axes, Dropout's ratio: folded into the op
            }
            add(new Node(name, n.getOpType(), op, ins, n.getOutput(0)));
        }

        /**
         * An Add of each row's offset r·T (batch-dependent, or the export's constant [0, T, …]) and a
         * per-request value: recorded as a row index for the Gather that reads it, no node.
         */
        private boolean rowIndex(OnnxMl.NodeProto n) {
            if (n.getInputCount() != 2) {
                return false;
            }
            for (int o = 0; o < 2; o++) {
                String off = n.getInput(o);
                String per = n.getInput(1 - o);
                if (off.isEmpty() || per.isEmpty() || lt.isLoadTime(per) || !known.contains(per)) {
                    continue;
                }
                int stride = 0;
                if (lt.isBatchDependent(off)) {
                    Tensor[] at = new Tensor[LoadTime.BATCHES];
                    for (int b = 0; b < at.length; b++) {
                        at[b] = lt.valueAt(off, b);
                    }
                    stride = BatchRowIndex.stride(at);
                } else if (lt.isConstant(off)) {
                    stride = BatchRowIndex.strideOfConstant(lt.valueAt(off, 0));
                }
                if (stride > 0) {
                    rowIndices.put(n.getOutput(0), new BatchRowIndex.Index(per, stride));
                    known.add(n.getOutput(0));
                    lt.shapeLike(n.getOutput(0), per); // one position per row: its Shape feeds the output's Reshape
                    return true;
                }
            }
            return false;
        }

        private void add(Node node) {
            nodes.add(node);
            known.add(node.output());
            lt.nodeAdded(node);
        }

        /**
         * Gather with constant indices and Slice on an activation, as {@link Op.Select} nodes: one
         * for a Gather, one per sliced axis for a Slice (an Identity when it slices nothing).
         */
        private void selectNodes(OnnxMl.NodeProto n, String name) {
            String x = n.getInput(0);
            Attrs a = new Attrs(n, name, source);
            if (n.getOpType().equals("Gather") && lt.isInteger(x)) {
                throw new ModelException(source + ": node '" + name + "' (Gather) picks from integer values computed per "
                        + "request ('" + x + "'); kxai computes in float32 and takes integer ids only as Gather indices");
            }
            int[] shape = lt.shapeAt(x, 0, name);
            if (n.getOpType().equals("Gather")) {
                ops.checkArity("Gather", name, n.getInputCount());
                int axis = (int) a.i("axis", 0);
                BatchRowIndex.Index rows = rowIndices.get(n.getInput(1));
                if (rows != null) {
                    BatchRowIndex.lower(new Lowerings.Emit(n, name, source, lt, sink), x, axis, rows);
                    return;
                }
                Tensor idx = lt.isConstant(n.getInput(1)) ? lt.valueAt(n.getInput(1), 0) : null;
                if (idx == null) {
                    // indices given per request (token ids): an embedding lookup
                    if (!lt.isInteger(n.getInput(1))) {
                        throw new ModelException(source + ": node '" + name + "' (Gather): indices '" + n.getInput(1)
                                + "' are float values computed per request; kxai takes integer ids from a model input");
                    }
                    add(new Node(name, "Gather", new Op.Gather(axis), List.of(x, n.getInput(1)), n.getOutput(0)));
                    return;
                }
                int ax = axis < 0 ? axis + shape.length : axis;
                if (ax < 0 || ax >= shape.length) {
                    throw new ModelException(source + ": node '" + name + "' (Gather): axis " + axis
                            + " is out of range for " + Shapes.str(shape));
                }
                int[] indices = new int[idx.size()];
                for (int i = 0; i < indices.length; i++) {
                    float v = idx.data()[i];
                    if (v < -shape[ax] || v >= shape[ax]) {
                        throw new ModelException(source + ": node '" + name + "' (Gather): index " + (long) v
                                + " is out of range for axis " + ax + " of " + Shapes.str(shape));
                    }
                    indices[i] = (int) (v < 0 ? v + shape[ax] : v);
                }
                add(new Node(name, "Gather", new Op.Select(ax, indices, idx.shape()), List.of(x), n.getOutput(0)));
                return;
            }
            List<Tensor> params = new ArrayList<>();
            params.add(null);
            for (int j = 1; j < n.getInputCount(); j++) {
                String v = n.getInput(j);
                if (!v.isEmpty() && !lt.isConstant(v)) {
                    throw new ModelException(source + ": node '" + name + "' (Slice): '" + v
                            + "' is computed at run time; kxai needs starts, ends, axes and steps known at load");
                }
                params.add(v.isEmpty() ? null : lt.valueAt(v, 0));
            }
            ConstantFolding.Node f = foldable(n, name, true);
            int[][] spec;
            try {
                spec = ConstantFolding.sliceSpec(f, shape, params);
                for (int b = 1; b < LoadTime.BATCHES; b++) {
                    if (!Arrays.deepEquals(spec, ConstantFolding.sliceSpec(f, lt.shapeAt(x, b, name), params))) {
                        throw new ModelException("node '" + name + "' (Slice): slices an axis whose size depends on the "
                                + "batch size");
                    }
                }
            } catch (ModelException e) {
                throw new ModelException(source + ": " + e.getMessage(), e);
            }
            String from = x;
            List<Integer> axes = new ArrayList<>();
            for (int d = 0; d < spec.length; d++) {
                if (spec[d] != null && !(spec[d][0] == 0 && spec[d][1] == 1 && spec[d][2] == shape[d])) {
                    axes.add(d);
                }
            }
            if (axes.isEmpty()) {
                add(new Node(name, "Slice", new Op.Identity(), List.of(x), n.getOutput(0)));
                return;
            }
            for (int k = 0; k < axes.size(); k++) {
                int d = axes.get(k);
                int[] indices = new int[spec[d][2]];
                for (int i = 0; i < indices.length; i++) {
                    indices[i] = spec[d][0] + i * spec[d][1];
                }
                boolean last = k == axes.size() - 1;
                String out = last ? n.getOutput(0) : n.getOutput(0) + "/axis" + d;
                add(new Node(last ? name : name + "/axis" + d, "Slice", new Op.Select(d, indices,
                        new int[] {indices.length}), List.of(from), out));
                from = out;
            }
        }

        /** A node as constant folding reads it. */
        private ConstantFolding.Node foldable(OnnxMl.NodeProto n, String name, boolean integer) {
            Attrs a = new Attrs(n, name, source);
            return new ConstantFolding.Node() {
                @Override
                public String name() {
                    return name;
                }

                @Override
                public String opType() {
                    return n.getOpType();
                }

                @Override
                public long opset() {
                    return opset;
                }

                @Override
                public long intAttr(String attr, long dflt) {
                    return a.i(attr, dflt);
                }

                @Override
                public int[] intsAttr(String attr) {
                    for (OnnxMl.AttributeProto at : n.getAttributeList()) {
                        if (at.getName().equals(attr)) {
                            // INT64_MAX means "to the end" in Slice: clamp to int, it only acts as a bound
                            return at.getIntsList().stream().mapToInt(v -> (int) Math.max(Integer.MIN_VALUE,
                                    Math.min(Integer.MAX_VALUE, v))).toArray();
                        }
                    }
                    return null;
                }

                @Override
                public boolean integer() {
                    return integer;
                }

                @Override
                public String stringAttr(String attr, String dflt) {
                    return a.s(attr, dflt);
                }

                @Override
                public Tensor tensorAttr(String attr) {
                    for (OnnxMl.AttributeProto at : n.getAttributeList()) {
                        if (at.getName().equals(attr) && at.hasT()) {
                            return tensor(at.getT(), "attribute " + attr + " of node '" + name + "'");
                        }
                    }
                    return null;
                }
            };
        }

        private Tensor constantValue(OnnxMl.NodeProto n, String name) {
            for (OnnxMl.AttributeProto at : n.getAttributeList()) {
                switch (at.getName()) {
                    case "value":
                        return tensor(at.getT(), "Constant node '" + name + "'");
                    case "value_float":
                        return Tensor.scalar(at.getF());
                    case "value_int":
                        return Tensor.scalar(at.getI());
                    case "value_floats": {
                        float[] v = new float[at.getFloatsCount()];
                        for (int i = 0; i < v.length; i++) {
                            v[i] = at.getFloats(i);
                        }
                        return new Tensor(new int[] {v.length}, v);
                    }
                    case "value_ints": {
                        float[] v = new float[at.getIntsCount()];
                        for (int i = 0; i < v.length; i++) {
                            v[i] = at.getInts(i);
                        }
                        return new Tensor(new int[] {v.length}, v);
                    }
                    default:
                        break;
                }
            }
            throw new ModelException(source + ": Constant node '" + name + "' has no supported value attribute");
        }

        private Tensor tensor(OnnxMl.TensorProto t, String what) {
            return TensorReader.read(t, what, source, ext);
        }
    }
}
