package keyboardlm.core;

import java.util.ArrayList;
import java.util.List;

/**
 * What the app holds for a text field: the bundle, the model and the engine -- or, if any
 * of them failed (missing or tampered bundle, another format version, a vocabulary that does
 * not match the model, a model that fails at run time), a one-line message and an empty
 * strip. No method throws: the keyboard keeps typing without suggestions.
 */
public final class KeyboardSession {
    /** Opens the bundle's model (the app: a LiteRT interpreter on model.tflite). */
    public interface ModelFactory {
        StepModel open(Bundle bundle) throws Exception;
    }

    private KeyboardEngine engine;
    private String message;

    private KeyboardSession(KeyboardEngine engine, String message) {
        this.engine = engine;
        this.message = message;
    }

    /** Loads and verifies the bundle, opens its model, starts an engine on an empty field. */
    public static KeyboardSession open(BundleFiles files, ModelFactory models, PersonalCache cache) {
        try {
            Bundle bundle = Bundle.load(files);
            StepModel model = models.open(bundle);
            return new KeyboardSession(new KeyboardEngine(bundle, model, cache, true, KeyboardEngine.STRIP_SIZE), null);
        } catch (BundleException e) {
            return failed(e.getMessage());
        } catch (Exception | LinkageError e) {  // e.g. IllegalArgumentException from LiteRT, a missing native library
            return failed("the model could not be opened: " + e);
        }
    }

    public static KeyboardSession open(BundleFiles files, ModelFactory models) {
        return open(files, models, null);
    }

    private static KeyboardSession failed(String message) {
        return new KeyboardSession(null, "No suggestions: " + message);
    }

    /** True while suggestions work. */
    public boolean ready() {
        return engine != null;
    }

    /** Why there are no suggestions (one line), or null when ready. */
    public String message() {
        return message;
    }

    /** The engine, or null when not ready. */
    public KeyboardEngine engine() {
        return engine;
    }

    public List<String> reset(String text) {
        return run(() -> engine.reset(text));
    }

    public List<String> setText(String text) {
        return run(() -> engine.setText(text));
    }

    public List<String> strip() {
        return run(() -> { });
    }

    /** Taps slot {@code index}; returns the engine's new text, or null (nothing changed). */
    public String tap(int index) {
        if (engine == null) return null;
        try {
            if (index >= engine.strip().size()) return null;
            engine.tap(index);
            return engine.text();
        } catch (RuntimeException e) {
            fail(e);
            return null;
        }
    }

    private List<String> run(Runnable change) {
        if (engine == null) return new ArrayList<>();
        try {
            change.run();
            return engine.strip();
        } catch (RuntimeException e) {
            fail(e);
            return new ArrayList<>();
        }
    }

    private void fail(RuntimeException e) {
        engine = null;
        message = "No suggestions: the model failed (" + e + ")";
    }
}
