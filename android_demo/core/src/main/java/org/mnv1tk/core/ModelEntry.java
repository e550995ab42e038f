package org.mnv1tk.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/** One model of the bundle's models.json (written by {@code mnv1-tk bundle}). */
public final class ModelEntry {
    public final String id;
    public final String file;
    public final String cardFile;
    public final String labelsFile;
    public final String model;
    public final double width;
    /** "litert", "mslite" or "ort": the app flavor that can run it. */
    public final String runtime;
    public final List<String> accelerators;
    public final String precision;
    /** The SoC the file was compiled for (an NPU context binary / AOT model), or null for a portable model. */
    public final String soc;
    public final int numClasses;
    public final String inputDtype;
    public final String outputDtype;
    /** Null unless the output is int8. */
    public final QuantParams outputQuant;
    public final InputSpec input;

    ModelEntry(JsonFields json) {
        id = json.string("id");
        file = json.string("file");
        cardFile = json.string("card");
        labelsFile = json.string("labels");
        model = json.string("model");
        width = json.number("width");
        runtime = json.string("runtime");
        List<String> names = new ArrayList<>();
        for (Object name : json.list("accelerators")) {
            names.add((String) name);
        }
        accelerators = Collections.unmodifiableList(names);
        precision = json.string("precision");
        soc = json.has("soc") ? json.string("soc") : null;
        numClasses = json.integer("num_classes");
        inputDtype = json.string("input_dtype");
        outputDtype = json.string("output_dtype");
        outputQuant = json.has("output_quant") ? QuantParams.fromJson(json.object("output_quant")) : null;
        QuantParams inputQuant = json.has("input_quant") && !"float32".equals(inputDtype)
                ? QuantParams.fromJson(json.object("input_quant")) : null;
        input = new InputSpec(json.integer("image_size"), json.number("crop_pct"), json.floats("mean"),
                json.floats("std"), InputSpec.Layout.valueOf(json.string("layout")), inputQuant);
        if (!"float32".equals(outputDtype) && outputQuant == null) {
            throw new IllegalArgumentException("models.json: " + id + " has an " + outputDtype + " output without output_quant");
        }
    }

    /** The picker's label, e.g. "mobilenet_v1_025 32px int8 · litert · sm8650". */
    public String displayName() {
        String name = String.format(Locale.ROOT, "%s %dpx %s · %s", model, input.imageSize, precision, runtime);
        return soc == null ? name : name + " · " + soc;
    }

    /** Whether this file is the one to load for {@code accelerator} on a phone whose SoC is {@code deviceSoc}. */
    public boolean runsOn(String accelerator, String deviceSoc) {
        if (!accelerators.contains(accelerator)) {
            return false;
        }
        return soc == null || ("npu".equals(accelerator) && soc.equalsIgnoreCase(deviceSoc));
    }
}
