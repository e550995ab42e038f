package org.mnv1tk.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The bundle's golden vectors (golden/golden.json, written by {@code mnv1-tk bundle}): real images as
 * decoded RGBA, and per model the host's input tensors, int8 inputs, logits and top-5.
 */
public final class GoldenSet {
    /** One golden image: the decoded pixels the host preprocessed. */
    public static final class Image {
        public final String file;
        public final String rgba;
        public final int width;
        public final int height;

        Image(JsonFields json) {
            file = json.string("file");
            rgba = json.string("rgba");
            width = json.integer("width");
            height = json.integer("height");
        }
    }

    /** One image through one model on the host. */
    public static final class Sample {
        public final String tensor;
        public final String input; // null unless the model takes int8
        public final String logits; // null when the host could not run the model (compiled for a phone's NPU)
        public final int[] top5;

        Sample(JsonFields json) {
            tensor = json.string("tensor");
            input = json.has("input") ? json.string("input") : null;
            logits = json.has("logits") ? json.string("logits") : null;
            if (json.has("top5")) {
                List<?> list = json.list("top5");
                top5 = new int[list.size()];
                for (int i = 0; i < top5.length; i++) {
                    top5[i] = ((Double) list.get(i)).intValue();
                }
            } else {
                top5 = null;
            }
        }
    }

    /** The golden records of one model. */
    public static final class ModelGolden {
        public final List<Sample> samples;
        public final String quantProbe; // float32 values, null for float-input models
        public final String quantExpected; // their int8 quantization by the toolkit
        public final String dequantProbe; // every int8 -128..127 dequantized with the output quantization, or null
        /** For a file compiled for one SoC (which the host cannot run): the portable model whose logits stand in. */
        public final String reference;

        ModelGolden(JsonFields json) {
            List<Sample> list = new ArrayList<>();
            List<?> raw = json.list("samples");
            for (int i = 0; i < raw.size(); i++) {
                @SuppressWarnings("unchecked")
                Map<String, Object> sample = (Map<String, Object>) raw.get(i);
                list.add(new Sample(new JsonFields(sample, "golden sample " + i)));
            }
            samples = Collections.unmodifiableList(list);
            quantProbe = json.has("quant_probe") ? json.string("quant_probe") : null;
            quantExpected = json.has("quant_expected") ? json.string("quant_expected") : null;
            dequantProbe = json.has("dequant_probe") ? json.string("dequant_probe") : null;
            reference = json.has("reference") ? json.string("reference") : null;
        }
    }

    /** A random RGB image and OpenCV's INTER_LINEAR resize of it. */
    public static final class ResizeProbe {
        public final String src;
        public final int width;
        public final int height;
        public final String expected;
        public final int outWidth;
        public final int outHeight;

        ResizeProbe(JsonFields json) {
            src = json.string("src");
            width = json.integer("width");
            height = json.integer("height");
            expected = json.string("expected");
            outWidth = json.integer("out_width");
            outHeight = json.integer("out_height");
        }
    }

    public final List<Image> images;
    public final List<ResizeProbe> resizeProbes;
    private final Map<String, ModelGolden> models;

    private GoldenSet(List<Image> images, List<ResizeProbe> resizeProbes, Map<String, ModelGolden> models) {
        this.images = Collections.unmodifiableList(images);
        this.resizeProbes = Collections.unmodifiableList(resizeProbes);
        this.models = models;
    }

    public static GoldenSet load(AssetSource assets, String goldenFile) throws IOException {
        JsonFields json = new JsonFields(Json.parseObject(assets.readText(goldenFile)), goldenFile);
        List<Image> images = new ArrayList<>();
        for (Object image : json.list("images")) {
            @SuppressWarnings("unchecked")
            Map<String, Object> map = (Map<String, Object>) image;
            images.add(new Image(new JsonFields(map, goldenFile + " image")));
        }
        List<ResizeProbe> probes = new ArrayList<>();
        for (Object probe : json.list("resize")) {
            @SuppressWarnings("unchecked")
            Map<String, Object> map = (Map<String, Object>) probe;
            probes.add(new ResizeProbe(new JsonFields(map, goldenFile + " resize probe")));
        }
        Map<String, ModelGolden> models = new LinkedHashMap<>();
        JsonFields byModel = json.object("models");
        @SuppressWarnings("unchecked")
        Map<String, Object> raw = (Map<String, Object>) json.raw("models");
        for (String id : raw.keySet()) {
            models.put(id, new ModelGolden(byModel.object(id)));
        }
        return new GoldenSet(images, probes, models);
    }

    public ModelGolden forModel(String id) {
        ModelGolden golden = models.get(id);
        if (golden == null) {
            throw new IllegalArgumentException("golden.json has no vectors for " + id + " (run mnv1-tk bundle again)");
        }
        return golden;
    }

    /** Little-endian float32 file contents. */
    public static float[] floats(byte[] bytes) {
        ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[bytes.length / 4];
        buffer.asFloatBuffer().get(out);
        return out;
    }
}
