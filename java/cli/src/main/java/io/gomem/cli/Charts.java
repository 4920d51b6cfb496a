package io.gomem.cli;

import org.knowm.xchart.AnnotationLine;
import org.knowm.xchart.AnnotationText;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.xml.sax.SAXException;

import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.TransformerException;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import java.awt.BasicStroke;
import java.awt.Color;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * XChart line charts and their files: a chart of the house style, lines, labelled vertical and
 * horizontal markers, and {@link #save} to SVG and PNG. XChart draws text as outlines, so the SVG
 * gets a {@code <title>} and a {@code <desc>} naming the chart and its series, for readers and
 * tools that look for them; its DOCTYPE (a DTD on the web) is dropped so that it parses offline.
 */
final class Charts {
    private Charts() {
    }

    /** Colours (Okabe-Ito, safe for colour blindness) for the allocators and gomem's own figures. */
    static final Color GOMEM = new Color(0, 114, 178);
    static final Color MALLOC = new Color(213, 94, 0);
    static final Color JEMALLOC = new Color(0, 158, 115);
    static final Color GOMEM_LIGHT = new Color(86, 180, 233);
    static final Color LIVE = new Color(80, 80, 80);
    static final Color PURPLE = new Color(204, 121, 167);
    static final Color YELLOW = new Color(230, 159, 0);
    static final List<Color> PALETTE = List.of(GOMEM, MALLOC, JEMALLOC, YELLOW, PURPLE, GOMEM_LIGHT, LIVE, Color.BLACK);

    /** The colour of an allocator's RSS line. */
    static Color colorOf(String allocator) {
        return switch (allocator) {
            case "gomem" -> GOMEM;
            case "malloc" -> MALLOC;
            default -> JEMALLOC;
        };
    }

    static XYChart chart(String title, String xTitle, String yTitle) {
        XYChart c = new XYChartBuilder().width(1100).height(600).title(title).xAxisTitle(xTitle).yAxisTitle(yTitle).build();
        c.getStyler().setChartBackgroundColor(Color.WHITE).setPlotBackgroundColor(Color.WHITE)
                .setLegendPosition(Styler.LegendPosition.OutsideE).setLegendBorderColor(Color.LIGHT_GRAY)
                .setAnnotationLineColor(Color.GRAY).setAnnotationLineStroke(new BasicStroke(1f))
                .setAnnotationTextFontColor(Color.DARK_GRAY);
        c.getStyler().setPlotGridLinesColor(new Color(230, 230, 230)).setYAxisMin(0.0)
                .setXAxisDecimalPattern("#,##0.##").setYAxisDecimalPattern("#,##0.#");
        return c;
    }

    /** Adds a line without markers; {@code dashed} for figures drawn beside the main ones. */
    static XYSeries line(XYChart c, String name, double[] x, double[] y, Color color, boolean dashed) {
        return line(c, name, x, y, color, dashed ? SeriesLines.DASH_DASH : new BasicStroke(2f));
    }

    /** Adds a line without markers, drawn with {@code stroke}. */
    static XYSeries line(XYChart c, String name, double[] x, double[] y, Color color, BasicStroke stroke) {
        XYSeries s = c.addSeries(name, x, y);
        s.setMarker(SeriesMarkers.NONE);
        s.setLineColor(color);
        s.setLineStyle(stroke);
        return s;
    }

    /** The fill of a shaded span: a light grey that the lines stay readable over. */
    static final Color SHADE = new Color(0, 0, 0, 14);

    /**
     * A span of x from {@code start} to {@code end}: a vertical line at its start (unless 0), its
     * label centred at height {@code labelY}, and if {@code shaded} a light band up to
     * {@code top} (an area series kept out of the legend and out of the SVG's series list).
     */
    static void span(XYChart c, double start, double end, String label, double labelY, boolean shaded, double top) {
        if (start > 0) {
            c.addAnnotation(new AnnotationLine(start, true, false));
        }
        c.addAnnotation(new AnnotationText(label, (start + end) / 2, labelY, false));
        if (shaded && end > start) {
            XYSeries band = c.addSeries(BAND + label, new double[] {start, end}, new double[] {top, top});
            band.setXYSeriesRenderStyle(org.knowm.xchart.XYSeries.XYSeriesRenderStyle.Area);
            band.setFillColor(SHADE);
            band.setLineColor(new Color(0, 0, 0, 0));
            band.setMarker(SeriesMarkers.NONE);
            band.setShowInLegend(false);
        }
    }

    /** Name prefix of the shading series: not data, so left out of the SVG's description. */
    static final String BAND = "phase band: ";

    /** A horizontal line at {@code y}, its label centred at {@code labelX} just above it. */
    static void horizontal(XYChart c, double y, String label, double labelX, double labelLift) {
        c.addAnnotation(new AnnotationLine(y, false, false));
        c.addAnnotation(new AnnotationText(label, labelX, y + labelLift, false));
    }

    /** Writes {@code dir/name.svg} and {@code dir/name.png}; returns both paths. */
    static List<Path> save(XYChart c, Path dir, String name) throws IOException {
        Path png = dir.resolve(name + ".png");
        Path svg = dir.resolve(name + ".svg");
        BitmapEncoder.saveBitmap(c, png.toString(), BitmapEncoder.BitmapFormat.PNG);
        ByteArrayOutputStream raw = new ByteArrayOutputStream();
        VectorGraphicsEncoder.saveVectorGraphic(c, raw, VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
        try {
            Document doc = parseSvg(raw.toByteArray());
            Element root = doc.getDocumentElement();
            Element title = doc.createElementNS(root.getNamespaceURI(), "title");
            title.setTextContent(c.getTitle());
            Element desc = doc.createElementNS(root.getNamespaceURI(), "desc");
            desc.setTextContent("Series: " + String.join("; ", c.getSeriesMap().keySet().stream()
                    .filter(n -> !n.startsWith(BAND)).toList()));
            root.insertBefore(desc, root.getFirstChild());
            root.insertBefore(title, desc);
            TransformerFactory tf = TransformerFactory.newInstance();
            tf.setAttribute(XMLConstants.ACCESS_EXTERNAL_DTD, "");
            var t = tf.newTransformer();
            t.setOutputProperty(OutputKeys.ENCODING, "UTF-8");
            t.transform(new DOMSource(doc), new StreamResult(svg.toFile()));
        } catch (ParserConfigurationException | SAXException | TransformerException e) {
            throw new IOException("XChart's SVG could not be read back: " + e.getMessage(), e);
        }
        return List.of(svg, png);
    }

    /** Parses SVG without fetching its DTD. */
    static Document parseSvg(byte[] svg) throws ParserConfigurationException, SAXException, IOException {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        f.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
        return f.newDocumentBuilder().parse(new ByteArrayInputStream(svg));
    }
}
