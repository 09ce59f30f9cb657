package keyboardlm.core;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.Charset;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** Reading streams, UTF-8 and sha256: the few byte-level helpers the loaders share. */
public final class Bytes {
    public static final Charset UTF8 = Charset.forName("UTF-8");

    private Bytes() {}

    /** {@code data} to {@code path}: written whole to a temporary file beside it, synced, then renamed over it. */
    public static void writeAtomically(File path, byte[] data) throws IOException {
        File temp = File.createTempFile("." + path.getName() + ".", ".tmp", path.getAbsoluteFile().getParentFile());
        try {
            try (FileOutputStream out = new FileOutputStream(temp)) {
                out.write(data);
                out.getFD().sync();
            }
            if (!temp.renameTo(path)) throw new IOException(path + ": could not replace it with " + temp);
        } finally {
            if (temp.exists() && !temp.delete()) temp.deleteOnExit();
        }
    }

    /** Every byte of {@code in}, which is closed (InputStream.readAllBytes needs Android 13). */
    public static byte[] readAll(InputStream in) throws IOException {
        try (InputStream stream = in) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buffer = new byte[1 << 16];
            for (int n; (n = stream.read(buffer)) > 0; ) out.write(buffer, 0, n);
            return out.toByteArray();
        }
    }

    /** A resource of this package (shipped in core's jar), as UTF-8 text. */
    static String resource(String name) {
        InputStream in = Bytes.class.getResourceAsStream(name);
        if (in == null) throw new IllegalStateException("keyboardlm/core/" + name + ": missing from core's resources");
        try {
            return new String(readAll(in), UTF8);
        } catch (IOException e) {
            throw new IllegalStateException("keyboardlm/core/" + name + ": unreadable (" + e.getMessage() + ")", e);
        }
    }

    /** Lowercase hex sha256, as in manifest.json and vocab.json. */
    public static String sha256(byte[] data) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(data);
            StringBuilder hex = new StringBuilder(64);
            for (byte b : digest) hex.append(Character.forDigit((b >> 4) & 15, 16)).append(Character.forDigit(b & 15, 16));
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("no SHA-256 on this runtime", e);
        }
    }
}
