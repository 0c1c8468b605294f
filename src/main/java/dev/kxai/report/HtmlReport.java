package dev.kxai.report;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;

/**
 * A self-contained HTML report: the run's parameters, then per example its pictures (the input,
 * overlays, or a bar chart), the prediction, the target and the convergence delta. Pictures are PNGs
 * embedded as base64 {@code data:} URIs, the style inline: the file opens anywhere without a network.
 * A small inline script records, once the page has loaded, how many images decoded and where they are
 * ({@code #kxai-render-check}'s data attributes), which the browser test reads.
 */
public final class HtmlReport {
    static {
        Png.init();
    }

    /**
     * One picture with its caption, already encoded (PNG, base64): a report over many examples holds
     * compressed bytes, not decoded pixels.
     */
    public record Picture(String caption, int width, int height, String pngBase64) {
        public static Picture of(String caption, BufferedImage image) {
            return new Picture(caption, image.getWidth(), image.getHeight(),
                    Base64.getEncoder().encodeToString(png(image)));
        }
    }

    /** One example: a title, its pictures and (label, value) facts (prediction, delta, summary). */
    public record Example(String title, List<Picture> pictures, Map<String, String> facts) {
    }

    private final String title;
    private final Map<String, String> params = new LinkedHashMap<>();
    private final List<Example> examples = new ArrayList<>();

    public HtmlReport(String title) {
        this.title = title;
    }

    /** A run parameter shown at the top (method, steps, baseline, model, preprocessing...). */
    public HtmlReport param(String name, Object value) {
        params.put(name, String.valueOf(value));
        return this;
    }

    public HtmlReport add(Example e) {
        examples.add(e);
        return this;
    }

    public int size() {
        return examples.size();
    }

    /** The page as a string. */
    public String html() {
        StringBuilder b = new StringBuilder(1 << 16);
        b.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>").append(esc(title))
                .append("</title>\n<style>\n")
                .append("body{font-family:sans-serif;margin:16px;color:#222;background:#fff}\n")
                .append("table.params td{padding:1px 10px 1px 0;font-size:13px;vertical-align:top}\n")
                .append("table.params td:first-child{color:#555}\n")
                .append("section.example{border-top:1px solid #ccc;padding:10px 0}\n")
                .append("figure{display:inline-block;margin:0 12px 8px 0;vertical-align:top}\n")
                .append("figure img{display:block;image-rendering:pixelated;border:1px solid #ddd}\n")
                .append("figcaption{font-size:12px;color:#555}\n")
                .append("dl{font-size:13px;margin:4px 0}dt{float:left;clear:left;width:110px;color:#555}dd{margin-left:120px}\n")
                .append("</style></head>\n<body>\n<h1>").append(esc(title)).append("</h1>\n<table class=\"params\">\n");
        for (Map.Entry<String, String> p : params.entrySet()) {
            b.append("<tr><td>").append(esc(p.getKey())).append("</td><td>").append(esc(p.getValue())).append("</td></tr>\n");
        }
        b.append("</table>\n");
        for (Example e : examples) {
            b.append("<section class=\"example\">\n<h2>").append(esc(e.title())).append("</h2>\n<div>\n");
            for (Picture p : e.pictures()) {
                b.append("<figure><img alt=\"").append(esc(p.caption())).append("\" width=\"").append(p.width())
                        .append("\" height=\"").append(p.height()).append("\" src=\"data:image/png;base64,")
                        .append(p.pngBase64()).append("\"><figcaption>")
                        .append(esc(p.caption())).append("</figcaption></figure>\n");
            }
            b.append("</div>\n<dl>\n");
            for (Map.Entry<String, String> f : e.facts().entrySet()) {
                b.append("<dt>").append(esc(f.getKey())).append("</dt><dd>").append(esc(f.getValue())).append("</dd>\n");
            }
            b.append("</dl>\n</section>\n");
        }
        b.append("<div id=\"kxai-render-check\" hidden></div>\n<script>\n")
                .append("function kxaiRenderCheck(){var imgs=document.images,ok=0,rects=[];\n")
                .append(" for(var i=0;i<imgs.length;i++){var im=imgs[i];if(im.complete&&im.naturalWidth>0)ok++;\n")
                .append("  var r=im.getBoundingClientRect();rects.push([Math.round(r.left+window.scrollX),")
                .append("Math.round(r.top+window.scrollY),Math.round(r.width),Math.round(r.height),im.naturalWidth].join(','));}\n")
                .append(" var m=document.getElementById('kxai-render-check');m.setAttribute('data-images',imgs.length);\n")
                .append(" m.setAttribute('data-decoded',ok);m.setAttribute('data-rects',rects.join(';'));}\n")
                .append("window.addEventListener('load',kxaiRenderCheck);\n</script>\n</body></html>\n");
        return b.toString();
    }

    public void write(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Files.writeString(file, html(), StandardCharsets.UTF_8);
    }

    static byte[] png(BufferedImage img) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            if (!ImageIO.write(img, "png", out)) {
                throw new IOException("no PNG writer");
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    static String esc(String s) {
        if (s == null) {
            return "";
        }
        StringBuilder b = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                case '\'' -> b.append("&#39;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }
}
