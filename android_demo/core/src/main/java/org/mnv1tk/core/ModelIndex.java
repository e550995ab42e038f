package org.mnv1tk.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/** The bundle's models.json: the models the app can pick, and where the golden vectors are. */
public final class ModelIndex {
    public static final String FILE_NAME = "models.json";
    public static final int VERSION = 1;

    public final List<ModelEntry> models;
    public final String goldenFile;

    private ModelIndex(List<ModelEntry> models, String goldenFile) {
        this.models = Collections.unmodifiableList(models);
        this.goldenFile = goldenFile;
    }

    public static ModelIndex parse(String jsonText) {
        Map<String, Object> map = Json.parseObject(jsonText);
        JsonFields json = new JsonFields(map, FILE_NAME);
        if (json.integer("version") != VERSION) {
            throw new IllegalArgumentException(FILE_NAME + " is version " + json.integer("version") + ", the app reads "
                    + VERSION + " (run mnv1-tk bundle again)");
        }
        List<ModelEntry> entries = new ArrayList<>();
        List<?> models = json.list("models");
        for (int i = 0; i < models.size(); i++) {
            @SuppressWarnings("unchecked")
            Map<String, Object> entry = (Map<String, Object>) models.get(i);
            entries.add(new ModelEntry(new JsonFields(entry, FILE_NAME + " models[" + i + "]")));
        }
        return new ModelIndex(entries, json.string("golden"));
    }

    /** The models one app flavor can run ("litert", "mslite" or "ort"). */
    public List<ModelEntry> forRuntime(String runtime) {
        List<ModelEntry> out = new ArrayList<>();
        for (ModelEntry entry : models) {
            if (entry.runtime.equals(runtime)) {
                out.add(entry);
            }
        }
        return out;
    }

    /**
     * The file to load for {@code picked} on {@code accelerator}: for the NPU, a sibling compiled for the
     * phone's SoC (same model, size and precision) when the bundle has one, else {@code picked} itself.
     */
    public ModelEntry resolve(ModelEntry picked, String accelerator, String deviceSoc) {
        if ("npu".equals(accelerator) && deviceSoc != null) {
            for (ModelEntry entry : models) {
                if (entry.soc != null && entry.runtime.equals(picked.runtime) && entry.model.equals(picked.model)
                        && entry.precision.equals(picked.precision) && entry.input.imageSize == picked.input.imageSize
                        && entry.runsOn(accelerator, deviceSoc)) {
                    return entry;
                }
            }
        }
        return picked;
    }
}
