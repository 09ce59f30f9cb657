package keyboardlm.demo;

import android.content.Context;
import android.content.res.AssetManager;
import android.os.Handler;
import android.os.Looper;
import android.util.Log;
import android.widget.Toast;
import java.io.File;
import java.io.IOException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import keyboardlm.core.BundleFiles;
import keyboardlm.core.Bytes;
import keyboardlm.core.CommittedText;
import keyboardlm.core.KeyboardController;
import keyboardlm.core.NightlyAdaptation;
import keyboardlm.core.UserWords;

/**
 * Wires a KeyboardController to Android: the bundle (the app's external files dir/bundle/ if
 * one was pushed there with adb push, else assets/bundle/ from copy_bundle.sh; asked again at
 * every start of input, so a pushed bundle is picked up when the keyboard reopens), LiteRT,
 * one background thread for the model, and the main thread for the answers. The words the
 * user teaches the keyboard live in the app's files dir (docs/engine.md §17), and so do the
 * messages the user commits and the adapter the nightly job trains on them (§18.5): each model
 * opened gets that adapter (NightlyAdaptation.load; none, or one that does not fit: the base model).
 */
final class Sessions {
    static final String DIRECTORY = "bundle";
    static final String TAG = "keyboard-lm";
    static final String COMMITTED = "committed.json";

    /** Adapters the nightly job wrote in this process: a keyboard seeing the count change reopens its model. */
    private static final AtomicLong ADAPTERS = new AtomicLong();
    /** The keyboard's input view is up (TrainingSchedule: no training then). */
    private static volatile boolean keyboardOpen;
    /** The user's committed text, one per process: the keyboard adds to it, the nightly job trains on it. */
    private static CommittedText committed;

    private Sessions() {}

    /** The background thread: all model work (load, prime, steps) runs there, in order. */
    static ExecutorService worker() {
        return Executors.newSingleThreadExecutor(task -> new Thread(task, "keyboard-model"));
    }

    /** The main thread, where the controller and the editor calls live. */
    static Executor mainThread() {
        Handler handler = new Handler(Looper.getMainLooper());
        return handler::post;
    }

    static KeyboardController controller(Context context, KeyboardController.Editor editor, Executor worker) {
        return controller(context, editor, worker, null, null);
    }

    /**
     * {@code words}: the words the user teaches it (null: none); from here on touched only on
     * {@code worker}. {@code committed}: where finished messages go (null: nowhere).
     */
    static KeyboardController controller(Context context, KeyboardController.Editor editor, Executor worker,
                                         UserWords words, CommittedText committed) {
        Context app = context.getApplicationContext();
        File adapter = adapterFile(app);
        return new KeyboardController(editor, () -> files(app),
                bundle -> new LiteRtStepModel(bundle, NightlyAdaptation.load(adapter, bundle, message -> Log.w(TAG, message))),
                null, words, committed, worker, mainThread());
    }

    /** The adapter the nightly job writes (docs/engine.md §18.5). */
    static File adapterFile(Context context) {
        return new File(context.getFilesDir(), NightlyAdaptation.FILE);
    }

    /** The committed text, loaded at first use (a file that does not read: said once, started empty). */
    static synchronized CommittedText committed(Context context) {
        if (committed == null) {
            File path = new File(context.getFilesDir(), COMMITTED);
            committed = CommittedText.loadOrStart(path, message -> Log.w(TAG, message));
        }
        return committed;
    }

    /** Saves the committed text if it changed; off the main thread (up to a few hundred KB). */
    static void saveCommitted(Context context) {
        File path = new File(context.getFilesDir(), COMMITTED);
        try {
            committed(context).save(path);
        } catch (IOException | RuntimeException e) {
            Log.w(TAG, path + ": the committed text could not be saved (" + e + ")");
        }
    }

    static void setKeyboardOpen(boolean open) {
        keyboardOpen = open;
    }

    static boolean keyboardOpen() {
        return keyboardOpen;
    }

    /** The nightly job wrote a new adapter. */
    static void adapterWritten() {
        ADAPTERS.incrementAndGet();
    }

    /** Adapters written so far (a keyboard's starting point for {@link #reloadIfAdapted}). */
    static long adapters() {
        return ADAPTERS.get();
    }

    /** Called before a start of input: the controller reopens its model if an adapter was written since {@code seen}; returns the count now. */
    static long reloadIfAdapted(KeyboardController controller, long seen) {
        long now = ADAPTERS.get();
        if (now != seen) controller.reloadModel();
        return now;
    }

    /** Where the user's words are kept: the files dir, beside a personal cache named cache.json. */
    static File wordsFile(Context context) {
        return UserWords.wordsPath(new File(context.getFilesDir(), "cache.json"));
    }

    /**
     * The words saved at {@code path} (none if there is no file). A corrupt file is kept aside
     * (NAME.bad) and the keyboard starts with no learned words, saying so once. Called on the
     * main thread (onCreate): a small file.
     */
    static UserWords loadWords(Context context, File path) {
        Context app = context.getApplicationContext();
        return UserWords.loadOrStart(path, message -> {
            Log.w(TAG, message);
            Toast.makeText(app, message, Toast.LENGTH_LONG).show();
        });
    }

    /** Called off the main thread: the pushed directory if it holds a manifest.json, else the assets. */
    static BundleFiles files(Context context) {
        File external = context.getExternalFilesDir(null);
        File pushed = external == null ? null : new File(external, DIRECTORY);
        return pushed != null && new File(pushed, "manifest.json").isFile()
                ? BundleFiles.directory(pushed) : assets(context.getAssets());
    }

    private static BundleFiles assets(final AssetManager assets) {
        return new BundleFiles() {
            @Override
            public byte[] read(String name) throws IOException {
                return Bytes.readAll(assets.open(DIRECTORY + "/" + name));  // FileNotFoundException if absent
            }

            @Override
            public String describe(String name) {
                return "assets/" + DIRECTORY + "/" + name;
            }
        };
    }
}
