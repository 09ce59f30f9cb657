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
import keyboardlm.core.BundleFiles;
import keyboardlm.core.Bytes;
import keyboardlm.core.KeyboardController;
import keyboardlm.core.UserWords;

/**
 * Wires a KeyboardController to Android: the bundle (the app's external files dir/bundle/ if
 * one was pushed there with adb push, else assets/bundle/ from copy_bundle.sh; asked again at
 * every start of input, so a pushed bundle is picked up when the keyboard reopens), LiteRT,
 * one background thread for the model, and the main thread for the answers. The words the
 * user teaches the keyboard live in the app's files dir (docs/engine.md §17).
 */
final class Sessions {
    static final String DIRECTORY = "bundle";
    static final String TAG = "keyboard-lm";

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
        return controller(context, editor, worker, null);
    }

    /** {@code words}: the words the user teaches it (null: none); from here on touched only on {@code worker}. */
    static KeyboardController controller(Context context, KeyboardController.Editor editor, Executor worker,
                                         UserWords words) {
        Context app = context.getApplicationContext();
        return new KeyboardController(editor, () -> files(app), LiteRtStepModel::new, null, words, worker, mainThread());
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

    /** Called on the worker: the pushed directory if it holds a manifest.json, else the assets. */
    private static BundleFiles files(Context context) {
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
