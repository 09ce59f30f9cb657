package keyboardlm.core;

/**
 * Where the keyboard finds its bundle now (the app: the pushed directory if it holds a
 * manifest.json, else the assets). Asked on the controller's background thread at every
 * start of input; the controller reloads when the manifest's bytes changed (the manifest
 * holds every file's sha256, so any new bundle has a new manifest).
 */
public interface BundleSource {
    BundleFiles files();

    /** Always the same files (tests; a bundle directory). */
    static BundleSource of(final BundleFiles files) {
        return () -> files;
    }
}
