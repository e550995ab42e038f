package org.mnv1tk.core;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;

/** The bundle written by `mnv1-tk bundle`, from the system property mnv1tk.bundle (tests/android passes it). */
final class BundleDir implements AssetSource {
    final File root;
    final ModelIndex index;
    final GoldenSet golden;

    private BundleDir(File root) throws IOException {
        this.root = root;
        this.index = ModelIndex.parse(readText(ModelIndex.FILE_NAME));
        this.golden = GoldenSet.load(this, index.goldenFile);
    }

    static BundleDir load() throws IOException {
        String path = System.getProperty("mnv1tk.bundle");
        if (path == null) {
            throw new IllegalStateException("set -Dmnv1tk.bundle=DIR to a folder written by `mnv1-tk bundle`");
        }
        return new BundleDir(new File(path));
    }

    @Override
    public byte[] read(String path) throws IOException {
        return Files.readAllBytes(new File(root, path).toPath());
    }
}
