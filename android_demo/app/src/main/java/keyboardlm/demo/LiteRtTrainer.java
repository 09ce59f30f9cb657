package keyboardlm.demo;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import keyboardlm.core.Adapter;
import keyboardlm.core.AdapterState;
import keyboardlm.core.Bundle;
import keyboardlm.core.BundleException;
import keyboardlm.core.Trainer;
import org.tensorflow.lite.Interpreter;

/**
 * The bundle's "train" signature on LiteRT (docs/engine.md §18.2; export/adapter_model.py writes
 * it, keyboard_lm/phone/runtime.py's TrainRunner is the Python twin): Interpreter.runSignature with
 * inputs tokens, targets [T] int32, mask, reset [T] float32, the states [1, size], adapter_bias /
 * _down / _up, their m_ and v_ moments, step_count, learning_rate and l2 (float32 scalars);
 * outputs loss, next_ arrays, next_m_ / next_v_ moments, next_step_count and next_ states.
 *
 * Every tensor goes in and out through a java.nio buffer wrapping a flat array (LiteRT checks a
 * buffer's byte size, not its shape, so [1, size], [F, r] and the scalars need no nested arrays).
 * Its own interpreter: the training job runs apart from the keyboard's step model.
 */
final class LiteRtTrainer implements Trainer {
    static final String SIGNATURE = "train";

    private final Interpreter interpreter;
    private final String[] names;
    private final int[] sizes;
    private final int window;

    LiteRtTrainer(Bundle bundle) throws BundleException {
        if (!bundle.hasAdapter()) {
            throw new BundleException("manifest.json: field adapter is missing: the bundle has no train signature");
        }
        names = bundle.stateNames;
        sizes = bundle.stateSizes;
        window = bundle.adapterWindow();
        ByteBuffer model = ByteBuffer.allocateDirect(bundle.model.length).order(ByteOrder.nativeOrder());
        model.put(bundle.model).rewind();
        interpreter = new Interpreter(model, new Interpreter.Options().setNumThreads(1));
        boolean opened = false;
        try {  // any failure below (ours or LiteRT's IllegalArgumentException) closes the interpreter
            check(interpreter, names);
            opened = true;
        } finally {
            if (!opened) interpreter.close();
        }
    }

    /** The train signature has exactly the inputs §18.2 lists, and the outputs. */
    private static void check(Interpreter interpreter, String[] names) throws BundleException {
        String[] signatures = interpreter.getSignatureKeys();
        if (!Arrays.asList(signatures).contains(SIGNATURE)) {
            throw new BundleException("model.tflite: no signature \"train\" (it has " + Arrays.toString(signatures)
                    + "), although manifest.json has an adapter block");
        }
        List<String> expected = new ArrayList<>(Arrays.asList("tokens", "targets", "mask", "reset", "step_count", "learning_rate",
                "l2"));
        List<String> outputs = new ArrayList<>(Arrays.asList("loss", "next_step_count"));
        for (String name : names) {
            expected.add(name);
            outputs.add("next_" + name);
        }
        for (String name : Adapter.ARRAYS) {
            for (String prefix : new String[] {"", "m_", "v_"}) {
                expected.add(prefix + name);
                outputs.add("next_" + prefix + name);
            }
        }
        List<String> inputs = Arrays.asList(interpreter.getSignatureInputs(SIGNATURE));
        if (inputs.size() != expected.size() || !inputs.containsAll(expected)) {
            throw new BundleException("model.tflite: signature train has inputs " + inputs + ", expected " + expected);
        }
        List<String> have = Arrays.asList(interpreter.getSignatureOutputs(SIGNATURE));
        if (!have.containsAll(outputs)) {
            throw new BundleException("model.tflite: signature train has outputs " + have + ", expected " + outputs);
        }
    }

    @Override
    public Result train(int[] tokens, int[] targets, float[] mask, float[] reset, float[][] state, AdapterState adapter,
                        float learningRate, float l2) {
        if (tokens.length != window || targets.length != window || mask.length != window || reset.length != window) {
            throw new IllegalArgumentException("a train window has " + window + " positions, got tokens " + tokens.length
                    + ", targets " + targets.length + ", mask " + mask.length + ", reset " + reset.length);
        }
        Map<String, Object> inputs = new HashMap<>();
        Map<String, Object> outputs = new HashMap<>();
        inputs.put("tokens", IntBuffer.wrap(tokens));
        inputs.put("targets", IntBuffer.wrap(targets));
        inputs.put("mask", FloatBuffer.wrap(mask));
        inputs.put("reset", FloatBuffer.wrap(reset));
        inputs.put("step_count", FloatBuffer.wrap(new float[] {adapter.stepCount}));
        inputs.put("learning_rate", FloatBuffer.wrap(new float[] {learningRate}));
        inputs.put("l2", FloatBuffer.wrap(new float[] {l2}));
        float[] loss = new float[1], stepCount = new float[1];
        outputs.put("loss", FloatBuffer.wrap(loss));
        outputs.put("next_step_count", FloatBuffer.wrap(stepCount));
        float[][] nextState = new float[names.length][];
        for (int i = 0; i < names.length; i++) {
            inputs.put(names[i], FloatBuffer.wrap(state[i]));
            nextState[i] = new float[sizes[i]];
            outputs.put("next_" + names[i], FloatBuffer.wrap(nextState[i]));
        }
        float[][][] given = {adapter.params, adapter.m, adapter.v};
        float[][][] next = new float[3][Adapter.ARRAYS.length][];
        String[] prefixes = {"", "m_", "v_"};
        for (int kind = 0; kind < 3; kind++) {
            for (int i = 0; i < Adapter.ARRAYS.length; i++) {
                String name = prefixes[kind] + Adapter.ARRAYS[i];
                inputs.put(name, FloatBuffer.wrap(given[kind][i]));
                next[kind][i] = new float[given[kind][i].length];
                outputs.put("next_" + name, FloatBuffer.wrap(next[kind][i]));
            }
        }
        interpreter.runSignature(inputs, outputs, SIGNATURE);
        return new Result(loss[0], new AdapterState(next[0], next[1], next[2], stepCount[0]), nextState);
    }

    @Override
    public void close() {
        interpreter.close();
    }
}
