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
    private StepModel model;
    private String message;

    private KeyboardSession(KeyboardEngine engine, StepModel model, String message) {
        this.engine = engine;
        this.model = model;
        this.message = message;
    }

    /**
     * Loads and verifies the bundle, opens its model, starts an engine on an empty field.
     * {@code cache}: the personal cache (null: none); {@code userWords}: the words the user
     * teaches the keyboard (docs/engine.md §17; null: none, no word is learned). Both belong
     * to the caller and outlive the session (one that fails to open never touches them).
     */
    public static KeyboardSession open(BundleFiles files, ModelFactory models, PersonalCache cache, UserWords userWords) {
        StepModel model = null;
        try {
            Bundle bundle = Bundle.load(files);
            model = models.open(bundle);
            KeyboardEngine engine = new KeyboardEngine(bundle, model, cache, true, bundle.stripSize, userWords);
            return new KeyboardSession(engine, model, null);
        } catch (BundleException e) {
            return failed(e.getMessage(), model);
        } catch (Exception | LinkageError e) {  // e.g. IllegalArgumentException from LiteRT, a missing native library
            return failed("the model could not be opened: " + e, model);
        }
    }

    /** A session without user words. */
    public static KeyboardSession open(BundleFiles files, ModelFactory models, PersonalCache cache) {
        return open(files, models, cache, null);
    }

    public static KeyboardSession open(BundleFiles files, ModelFactory models) {
        return open(files, models, null, null);
    }

    /** A session with no engine: {@code message} (after "No suggestions: ") and an empty strip. */
    public static KeyboardSession failed(String message) {
        return failed(message, null);
    }

    private static KeyboardSession failed(String message, StepModel model) {
        KeyboardSession session = new KeyboardSession(null, model, "No suggestions: " + message);
        session.close();
        return session;
    }

    /** Releases the model (the app: in onDestroy); no suggestions after. */
    public void close() {
        engine = null;
        if (message == null) message = "No suggestions: closed";
        try {
            if (model != null) model.close();
        } catch (RuntimeException e) {
            // nothing more to release
        }
        model = null;
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

    /** The text a tap on each of {@code words} leaves (changes nothing); null when not ready. */
    public List<String> afterTaps(List<String> words) {
        if (engine == null) return null;
        try {
            List<String> after = new ArrayList<>();
            for (String word : words) after.add(engine.afterTap(word));
            return after;
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
        close();
        message = "No suggestions: the model failed (" + e + ")";
    }
}
