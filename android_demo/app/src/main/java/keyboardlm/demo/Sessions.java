package keyboardlm.demo;

import android.content.Context;
import android.content.res.AssetManager;
import java.io.File;
import java.io.IOException;
import keyboardlm.core.BundleFiles;
import keyboardlm.core.Bytes;
import keyboardlm.core.KeyboardSession;

/**
 * Opens the keyboard session on the bundle: the app's external files dir/bundle/ if one was
 * pushed there (adb push, no rebuild), else assets/bundle/ (copy_bundle.sh, then rebuild).
 * A missing or bad bundle gives a session with a message and no suggestions, never a crash.
 */
final class Sessions {
    static final String DIRECTORY = "bundle";

    private Sessions() {}

    static KeyboardSession open(Context context) {
        File external = context.getExternalFilesDir(null);
        File pushed = external == null ? null : new File(external, DIRECTORY);
        BundleFiles files = pushed != null && new File(pushed, "manifest.json").isFile()
                ? BundleFiles.directory(pushed) : assets(context.getAssets());
        return KeyboardSession.open(files, LiteRtStepModel::new);
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
