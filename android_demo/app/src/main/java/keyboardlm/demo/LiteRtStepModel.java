package keyboardlm.demo;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import keyboardlm.core.Adapter;
import keyboardlm.core.Bundle;
import keyboardlm.core.BundleException;
import keyboardlm.core.StepModel;
import org.tensorflow.lite.Interpreter;

/**
 * The bundle's model on LiteRT: Interpreter.runSignature on the "step" signature
 * (inputs token [1] int32, h0, c0, ... [1, size] float32; outputs log_probs [1, vocabulary],
 * next_h0, next_c0, ...), as export/step_model.py writes it and the manifest records it.
 * A bundle with an adapter block (docs/engine.md §18.1) also takes adapter_bias [V],
 * adapter_down [F, r] and adapter_up [r, V]: the user's adapter, or zeros (the base model).
 */
final class LiteRtStepModel implements StepModel {
    private final Interpreter interpreter;
    private final String[] names;
    private final int[] sizes;
    private final int outputSize;
    /** The adapter's arrays in Adapter.ARRAYS order as direct buffers (copied into the inputs
     *  with one memcpy each), or null: the bundle takes no adapter. */
    private final FloatBuffer[] adapter;

    /** The bundle's model; with the zero adapter if the bundle takes one. */
    LiteRtStepModel(Bundle bundle) throws BundleException {
        this(bundle, null);
    }

    /**
     * The bundle's model with {@code adapter} (Adapter.load checked it against this bundle;
     * null: zeros, the base model bit for bit). A bundle without an adapter block takes none.
     */
    LiteRtStepModel(Bundle bundle, Adapter adapter) throws BundleException {
        if (adapter != null && !bundle.hasAdapter()) {
            throw new BundleException("manifest.json: field adapter is missing: this bundle takes no adapter");
        }
        if (adapter != null && !bundle.modelSha256().equals(adapter.modelSha256)) {
            throw new BundleException("the adapter was made for another model (bundle_model_sha256 " + adapter.modelSha256 + ")");
        }
        Adapter arrays = !bundle.hasAdapter() ? null : adapter != null ? adapter : Adapter.zeros(bundle);
        this.adapter = arrays == null ? null : directBuffers(arrays.arrays());
        ByteBuffer model = ByteBuffer.allocateDirect(bundle.model.length).order(ByteOrder.nativeOrder());
        model.put(bundle.model).rewind();
        names = bundle.stateNames;
        sizes = bundle.stateSizes;
        interpreter = new Interpreter(model, new Interpreter.Options().setNumThreads(1));
        boolean opened = false;
        try {  // any failure below (ours or LiteRT's IllegalArgumentException) closes the interpreter
            outputSize = check(interpreter, names, this.adapter != null);
            opened = true;
        } finally {
            if (!opened) interpreter.close();
        }
    }

    /** Checks the step signature; returns the log-probabilities' size (the engine checks it against the vocabulary). */
    private static int check(Interpreter interpreter, String[] names, boolean adapter) throws BundleException {
        String[] signatures = interpreter.getSignatureKeys();
        if (!Arrays.asList(signatures).contains(Bundle.SIGNATURE)) {
            throw new BundleException("model.tflite: no signature \"step\" (it has " + Arrays.toString(signatures) + ")");
        }
        List<String> inputs = Arrays.asList(interpreter.getSignatureInputs(Bundle.SIGNATURE));
        List<String> outputs = Arrays.asList(interpreter.getSignatureOutputs(Bundle.SIGNATURE));
        for (String name : names) {
            if (!inputs.contains(name) || !outputs.contains("next_" + name)) {
                throw new BundleException("model.tflite: signature step lacks state " + name + " (inputs " + inputs + ")");
            }
        }
        if (!inputs.contains("token") || !outputs.contains("log_probs")) {
            throw new BundleException("model.tflite: signature step needs input token and output log_probs");
        }
        for (String name : Adapter.ARRAYS) {
            if (inputs.contains(name) != adapter) {
                throw new BundleException("model.tflite: signature step " + (adapter ? "lacks input " + name + ", but manifest.json "
                        + "has an adapter block" : "takes " + name + ", but manifest.json has no adapter block") + " (inputs " + inputs + ")");
            }
        }
        int[] shape = interpreter.getOutputTensorFromSignature("log_probs", Bundle.SIGNATURE).shape();
        return shape[shape.length - 1];
    }

    @Override
    public int outputSize() {
        return outputSize;
    }

    @Override
    public float[][] zeroState() {
        return StepModel.zeros(sizes);
    }

    @Override
    public Step step(int token, float[][] state) {
        Map<String, Object> inputs = new HashMap<>();
        Map<String, Object> outputs = new HashMap<>();
        inputs.put("token", new int[] {token});
        float[][] logProbs = new float[1][outputSize];
        outputs.put("log_probs", logProbs);
        float[][][] next = new float[names.length][][];
        for (int i = 0; i < names.length; i++) {
            inputs.put(names[i], new float[][] {state[i]});
            next[i] = new float[1][sizes[i]];
            outputs.put("next_" + names[i], next[i]);
        }
        for (int i = 0; adapter != null && i < adapter.length; i++) {
            adapter[i].rewind();
            inputs.put(Adapter.ARRAYS[i], adapter[i]);
        }
        interpreter.runSignature(inputs, outputs, Bundle.SIGNATURE);
        float[][] nextState = new float[names.length][];
        for (int i = 0; i < names.length; i++) nextState[i] = next[i][0];
        return new Step(logProbs[0], nextState);
    }

    /** Direct, native-order copies of {@code arrays}: LiteRT copies such a buffer into a tensor whole. */
    static FloatBuffer[] directBuffers(float[][] arrays) {
        FloatBuffer[] out = new FloatBuffer[arrays.length];
        for (int i = 0; i < arrays.length; i++) {
            out[i] = ByteBuffer.allocateDirect(4 * arrays[i].length).order(ByteOrder.nativeOrder()).asFloatBuffer();
            out[i].put(arrays[i]).rewind();
        }
        return out;
    }

    @Override
    public void close() {
        interpreter.close();
    }
}
