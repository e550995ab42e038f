package org.mnv1tk.core;

/** Camera frames: RGBA_8888 planes with a row stride, turned upright by the sensor rotation. */
public final class RgbaFrame {
    public final byte[] pixels; // tightly packed RGBA [height, width, 4]
    public final int width;
    public final int height;

    public RgbaFrame(byte[] pixels, int width, int height) {
        if (pixels.length != width * height * 4) {
            throw new IllegalArgumentException(pixels.length + " bytes is not " + width + "x" + height + " RGBA");
        }
        this.pixels = pixels;
        this.width = width;
        this.height = height;
    }

    /**
     * Copies a plane of {@code rowStride} bytes per row (CameraX pads rows) and rotates it clockwise by
     * {@code rotationDegrees} (0, 90, 180, 270: ImageInfo.getRotationDegrees()), so the result is upright.
     */
    public static RgbaFrame upright(byte[] plane, int width, int height, int rowStride, int rotationDegrees) {
        if (rowStride < width * 4 || plane.length < rowStride * (height - 1) + width * 4) {
            throw new IllegalArgumentException("plane too small for " + width + "x" + height + " at stride " + rowStride);
        }
        int turns = Math.floorMod(rotationDegrees, 360);
        if (turns % 90 != 0) {
            throw new IllegalArgumentException("rotation " + rotationDegrees + " is not a multiple of 90");
        }
        boolean swap = turns == 90 || turns == 270;
        int outW = swap ? height : width;
        int outH = swap ? width : height;
        byte[] out = new byte[width * height * 4];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int ox;
                int oy;
                switch (turns) {
                    case 90: ox = height - 1 - y; oy = x; break;
                    case 180: ox = width - 1 - x; oy = height - 1 - y; break;
                    case 270: ox = y; oy = width - 1 - x; break;
                    default: ox = x; oy = y;
                }
                System.arraycopy(plane, y * rowStride + x * 4, out, (oy * outW + ox) * 4, 4);
            }
        }
        return new RgbaFrame(out, outW, outH);
    }
}
