package org.mnv1tk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The parts of the core that need no bundle: JSON, rotation, top-k ties, latency statistics, model selection. */
public class CoreUnitTest {
    @Test
    public void jsonReadsNestingEscapesAndNumbers() {
        Map<String, Object> doc = Json.parseObject("{\"a\": [1, -2.5e1, true, null], \"b\": {\"s\": \"x\\\"\\u00e9\\n\"}}");
        List<?> a = (List<?>) doc.get("a");
        assertEquals(1.0, (Double) a.get(0), 0);
        assertEquals(-25.0, (Double) a.get(1), 0);
        assertEquals(Boolean.TRUE, a.get(2));
        assertNull(a.get(3));
        assertEquals("x\"\u00e9\n", ((Map<?, ?>) doc.get("b")).get("s"));
    }

    @Test(expected = IllegalArgumentException.class)
    public void jsonRefusesTrailingGarbage() {
        Json.parse("{} x");
    }

    @Test(expected = IllegalArgumentException.class)
    public void jsonRefusesAnUnterminatedObject() {
        Json.parse("{\"a\": 1");
    }

    @Test
    public void framesTurnUprightWithRowPadding() {
        // 3x2 image, pixel value = index, rows padded to 16 bytes
        byte[] plane = new byte[16 * 2];
        for (int y = 0; y < 2; y++) {
            for (int x = 0; x < 3; x++) {
                for (int c = 0; c < 4; c++) {
                    plane[y * 16 + x * 4 + c] = (byte) (y * 3 + x);
                }
            }
        }
        RgbaFrame turned = RgbaFrame.upright(plane, 3, 2, 16, 90);
        assertEquals(2, turned.width);
        assertEquals(3, turned.height);
        // clockwise: the bottom-left pixel (3) comes to the top-left
        byte[] firstChannel = new byte[6];
        for (int i = 0; i < 6; i++) {
            firstChannel[i] = turned.pixels[4 * i];
        }
        assertArrayEquals(new byte[] {3, 0, 4, 1, 5, 2}, firstChannel);
        RgbaFrame back = RgbaFrame.upright(turned.pixels, 2, 3, 8, 270);
        assertArrayEquals(RgbaFrame.upright(plane, 3, 2, 16, 0).pixels, back.pixels);
        RgbaFrame half = RgbaFrame.upright(RgbaFrame.upright(plane, 3, 2, 16, 180).pixels, 3, 2, 12, 180);
        assertArrayEquals(back.pixels, half.pixels);
    }

    @Test
    public void resizeSizeDividesInDoubleLikePython() {
        float[] zero = {0f, 0f, 0f};
        float[] one = {1f, 1f, 1f};
        assertEquals(280, new InputSpec(224, 0.8, zero, one, InputSpec.Layout.NHWC, null).resizeSize()); // int(224 / 0.8)
        assertEquals(256, new InputSpec(224, 0.875, zero, one, InputSpec.Layout.NHWC, null).resizeSize());
    }

    @Test
    public void topKKeepsTheLowerIndexFirstOnTies() {
        assertArrayEquals(new int[] {1, 3, 0}, TopK.indices(new float[] {0f, 2f, -1f, 2f}, 3));
        double[] p = TopK.softmax(new float[] {1000f, 1000f});
        assertEquals(0.5, p[0], 1e-12);
    }

    @Test
    public void latencyIsOverTheLastWindowOfFrames() {
        LatencyStats stats = new LatencyStats(30);
        for (int i = 0; i < 40; i++) {
            stats.add(i * 50_000_000L, i < 10 ? 1000.0 : 10.0); // a frame every 50 ms
        }
        assertEquals(30, stats.count());
        assertEquals(10.0, stats.meanMs(), 1e-9);
        assertEquals(10.0, stats.medianMs(), 1e-9);
        assertEquals(20.0, stats.fps(), 1e-9);
    }

    @Test
    public void theNpuGetsTheFileCompiledForThePhonesSoc() {
        String json = "{\"version\": 1, \"golden\": \"golden/golden.json\", \"models\": ["
                + entry("m.int8.tflite", "null") + "," + entry("m.int8.sm8650.tflite", "\"sm8650\"") + "]}";
        ModelIndex index = ModelIndex.parse(json);
        ModelEntry plain = index.models.get(0);
        assertSame(index.models.get(1), index.resolve(plain, "npu", "SM8650"));
        assertSame(plain, index.resolve(plain, "npu", "SM8550"));
        assertSame(plain, index.resolve(plain, "gpu", "SM8650"));
        assertTrue(index.models.get(1).displayName().endsWith("sm8650"));
    }

    private static String entry(String file, String soc) {
        return "{\"id\": \"" + file + "\", \"file\": \"" + file + "\", \"card\": \"" + file + ".json\", \"labels\": \"labels.txt\","
                + "\"model\": \"m\", \"width\": 0.25, \"runtime\": \"litert\", \"accelerators\": [\"cpu\", \"gpu\", \"npu\"],"
                + "\"precision\": \"int8\", \"soc\": " + soc + ", \"image_size\": 32, \"num_classes\": 10, \"layout\": \"NHWC\","
                + "\"input_dtype\": \"int8\", \"input_quant\": {\"scale\": 0.02, \"zero_point\": -1}, \"output_dtype\": \"float32\","
                + "\"output_quant\": null, \"mean\": [0, 0, 0], \"std\": [1, 1, 1], \"crop_pct\": 0.875}";
    }
}
