package keyboardlm.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;

/**
 * Where a bundle's files come from: a directory here, the app's assets on the phone.
 * {@link #read} throws java.io.FileNotFoundException for a file that is not there.
 */
public interface BundleFiles {
    byte[] read(String name) throws IOException;

    /** The file as error messages name it (a path). */
    String describe(String name);

    /** The bundle directory {@code dir} (bundles/NAME as ``kblm export`` writes it). */
    static BundleFiles directory(final File dir) {
        return new BundleFiles() {
            @Override
            public byte[] read(String name) throws IOException {
                return Bytes.readAll(new FileInputStream(new File(dir, name)));
            }

            @Override
            public String describe(String name) {
                return new File(dir, name).getPath();
            }
        };
    }
}
