package org.mnv1tk.core;

import java.util.List;
import java.util.Map;

/** The toolkit's model card (the {@code <model file>.json} next to each model), the fields the app reads. */
public final class ModelCard {
    public final String model;
    public final double width;
    public final String precision;
    public final String format;
    public final int numClasses;
    public final String[] labels;
    public final String interpolation;
    public final String inputDtype;
    public final String outputDtype;
    public final InputSpec input;

    private ModelCard(JsonFields json) {
        model = json.string("model");
        width = json.number("width");
        precision = json.string("precision");
        format = json.string("format");
        numClasses = json.integer("num_classes");
        List<?> names = json.list("labels");
        labels = names.toArray(new String[0]);
        interpolation = json.stringOr("interpolation", "bilinear");
        inputDtype = json.stringOr("input_dtype", "float32");
        outputDtype = json.stringOr("output_dtype", "float32");
        QuantParams quant = json.has("input_quant") ? QuantParams.fromJson(json.object("input_quant")) : null;
        input = new InputSpec(json.integer("image_size"), json.number("crop_pct"), json.floats("mean"),
                json.floats("std"), InputSpec.Layout.valueOf(json.stringOr("input_layout", "NCHW")),
                "float32".equals(inputDtype) ? null : quant);
        if (labels.length != numClasses) {
            throw new IllegalArgumentException("model card lists " + labels.length + " labels for " + numClasses + " classes");
        }
        if (!"bilinear".equals(interpolation)) {
            throw new IllegalArgumentException("model card asks for " + interpolation + " resizing; the app implements bilinear");
        }
    }

    public static ModelCard parse(String jsonText) {
        Map<String, Object> map = Json.parseObject(jsonText);
        return new ModelCard(new JsonFields(map, "model card"));
    }
}
