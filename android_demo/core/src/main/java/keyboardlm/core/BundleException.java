package keyboardlm.core;

/** A missing, broken or incompatible bundle, explained in one line naming the file or field. */
public class BundleException extends Exception {
    private static final long serialVersionUID = 1L;

    public BundleException(String message) {
        super(message);
    }
}
